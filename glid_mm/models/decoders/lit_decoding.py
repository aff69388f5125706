"""Decoding strategies for the LiT decoder (Sec. 5.8).

* :func:`sample_decode`: temperature sampling (``temperature=0`` is greedy),
  optionally restricted to the ``top_k`` tokens and/or the nucleus of
  probability mass ``top_p``; with or without the key/value cache.
* :func:`best_of_n_decode`: the most likely of ``N`` sampled outputs
  (Fig. 8's 1 / 4 / 8 / 16 samples).
* :func:`beam_search`: batched beam search with GNMT length normalisation
  ``lp(Y) = ((5 + |Y|) / 6) ** alpha`` (Wu et al. 2016, the paper's [86]);
  the paper uses 4 beams and ``alpha = 0.1`` for captioning and OCR.
* :func:`score_classes`: the summed log-likelihood of every candidate class
  name (plus ``<eos>``) under the prompt; the argmax is the prediction.

All functions take a ``decoder`` with the call signature of
:class:`~glid_mm.models.decoders.LiTTextDecoder` (``decoder(tokens,
memory, memory_mask, positions, key_padding_mask, cache, last_only) ->
logits``) and
``init_cache()``; prompts are lists of token ids that start with ``<bos>``.
Returned sequences exclude the prompt and the final ``<eos>``.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from glid_mm.models.decoders.lit_text_decoder import reorder_cache

Prompts = Sequence[Sequence[int]]


def left_pad(
        prompts: Prompts, pad_id: int, device
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad prompts so that every sample's next token is at column -1.

    Returns ``tokens: [B, P]``, ``pad_mask: [B, P]`` (True = padding),
    ``positions: [B, P]`` (0 at each sample's first real token) and
    ``lengths: [B]``.
    """
    if len(prompts) == 0 or any(len(p) == 0 for p in prompts):
        raise ValueError('prompts must be non-empty lists that start with '
                         '<bos>')
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    P = int(lengths.max())
    tokens = torch.full((len(prompts), P),
                        pad_id,
                        dtype=torch.long,
                        device=device)
    for i, p in enumerate(prompts):
        tokens[i, P - len(p):] = torch.as_tensor(list(p), device=device)
    col = torch.arange(P, device=device)[None]
    start = (P - lengths)[:, None]
    pad_mask = col < start
    positions = (col - start).clamp(min=0)
    return tokens, pad_mask, positions, lengths


def _check_budget(max_length: int, P: int) -> int:
    max_new = max_length - P
    if max_new < 1:
        raise ValueError(f'prompt of {P} tokens leaves no room for output '
                         f'within max_length={max_length}')
    return max_new


def pick_tokens(logits: torch.Tensor,
                temperature: float = 0.,
                top_k: int = 0,
                top_p: float = 1.,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Next tokens ``[B]`` from ``logits: [B, V]`` (Sec. 5.8 samplers)."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float('-inf'))
    if top_p < 1.:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass before it already exceeds top_p
        drop = probs.cumsum(-1) - probs > top_p
        sorted_logits = sorted_logits.masked_fill(drop, float('-inf'))
        logits = torch.full_like(logits, float('-inf')).scatter(
            -1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def check_sampling_args(temperature, top_k, top_p) -> None:
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f'temperature must be >= 0, got {temperature!r}')
    if not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f'top_k must be an int >= 0 (0 = off), got '
                         f'{top_k!r}')
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f'top_p must be in (0, 1], got {top_p!r}')


@torch.no_grad()
def sample_decode(decoder,
                  memory: torch.Tensor,
                  prompts: Prompts,
                  eos_id: int,
                  pad_id: int,
                  max_length: int,
                  temperature: float = 0.,
                  top_k: int = 0,
                  top_p: float = 1.,
                  use_cache: bool = True,
                  memory_mask: Optional[torch.Tensor] = None,
                  generator: Optional[torch.Generator] = None,
                  allowed: Optional[torch.Tensor] = None,
                  return_scores: bool = False):
    """Greedy / temperature / top-k / nucleus decoding.

    Args:
        memory: Image tokens ``[B, N, Cm]``.
        prompts: ``B`` prompt id lists.
        max_length: Longest prompt + output (Sec. 4: 64).
        use_cache: Feed one token per step with the key/value cache; without
            it the whole sequence is re-run every step (for the benchmark and
            the equality test).
        allowed: Optional ``[V]`` bool mask of tokens that may be generated
            (e.g. no padding, prompt tokens or unused vocabulary ids).
        return_scores: Also return each output's log-likelihood under the
            model (untempered, over the ``allowed`` tokens, ``<eos>``
            included), for :func:`best_of_n_decode`.

    Returns:
        list[list[int]]: Output ids per prompt; with ``return_scores`` also
        a ``[B]`` float tensor of log-likelihoods and a ``[B]`` long tensor
        of output lengths (``<eos>`` counted).
    """
    check_sampling_args(temperature, top_k, top_p)
    tokens, pad, pos, lengths = left_pad(prompts, pad_id, memory.device)
    B, P = tokens.shape
    max_new = _check_budget(max_length, P)
    cache = decoder.init_cache() if use_cache else None
    logits = decoder(
        tokens, memory, memory_mask, pos, pad, cache, last_only=True)[:, -1]
    out = torch.full((B, max_new),
                     eos_id,
                     dtype=torch.long,
                     device=memory.device)
    finished = torch.zeros(B, dtype=torch.bool, device=memory.device)
    scores = torch.zeros(B, device=memory.device)
    lengths_out = torch.zeros(B, dtype=torch.long, device=memory.device)
    for t in range(max_new):
        restricted = _restrict(logits, allowed)
        nxt = pick_tokens(restricted, temperature, top_k, top_p, generator)
        if return_scores:
            logp = F.log_softmax(restricted.float(),
                                 -1).gather(1, nxt[:, None])[:, 0]
            scores += logp.masked_fill(finished, 0.)
            lengths_out += (~finished).long()
        nxt = nxt.masked_fill(finished, pad_id)
        out[:, t] = nxt.masked_fill(finished, eos_id)
        finished |= nxt == eos_id
        if bool(finished.all()) or t == max_new - 1:
            break
        new_pos = (lengths + t)[:, None]
        pad = torch.cat([pad, pad.new_zeros(B, 1)], dim=1)
        if use_cache:
            logits = decoder(
                nxt[:, None],
                memory,
                memory_mask,
                new_pos,
                pad,
                cache,
                last_only=True)[:, -1]
        else:
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            pos = torch.cat([pos, new_pos], dim=1)
            logits = decoder(
                tokens, memory, memory_mask, pos, pad, last_only=True)[:, -1]
    ids = [_strip(row, eos_id) for row in out.tolist()]
    if return_scores:
        return ids, scores, lengths_out
    return ids


def best_of_n_decode(decoder,
                     memory: torch.Tensor,
                     prompts: Prompts,
                     num_samples: int,
                     alpha: float = 0.,
                     memory_mask: Optional[torch.Tensor] = None,
                     **kwargs) -> List[List[int]]:
    """Best of ``num_samples`` sampled outputs per prompt (Sec. 5.8, Fig. 8
    compares temperature and top-k sampling at 1, 4, 8 and 16 samples).

    Draws ``num_samples`` independent samples per prompt with
    :func:`sample_decode` (``kwargs``: temperature, top-k, nucleus,
    generator...) in one batch, and keeps the one with the highest
    log-likelihood under the model divided by the GNMT length penalty
    ``lp`` with ``alpha`` (0 = summed log-likelihood; the paper's beam
    search uses 0.1). ``num_samples=1`` is plain sampling.
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f'num_samples must be an int >= 1, got '
                         f'{num_samples!r}')
    if num_samples == 1:
        return sample_decode(
            decoder, memory, prompts, memory_mask=memory_mask, **kwargs)
    B = len(prompts)
    repeated = [p for p in prompts for _ in range(num_samples)]
    memory = memory.repeat_interleave(num_samples, 0)
    if memory_mask is not None:
        memory_mask = memory_mask.repeat_interleave(num_samples, 0)
    ids, scores, lengths = sample_decode(
        decoder,
        memory,
        repeated,
        memory_mask=memory_mask,
        return_scores=True,
        **kwargs)
    penalty = ((5. + lengths.float()) / 6.)**alpha
    best = (scores / penalty).view(B, num_samples).argmax(1)
    return [ids[i * num_samples + int(k)] for i, k in enumerate(best)]


def _restrict(logits: torch.Tensor,
              allowed: Optional[torch.Tensor]) -> torch.Tensor:
    if allowed is None:
        return logits
    return logits.masked_fill(~allowed.to(logits.device), float('-inf'))


def _strip(row: List[int], eos_id: int) -> List[int]:
    """Tokens before the first ``<eos>`` (later slots are padding)."""
    return row[:row.index(eos_id)] if eos_id in row else row


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length normalisation ``((5 + length) / 6) ** alpha``."""
    return ((5. + length) / 6.)**alpha


@torch.no_grad()
def beam_search(decoder,
                memory: torch.Tensor,
                prompts: Prompts,
                eos_id: int,
                pad_id: int,
                max_length: int,
                num_beams: int = 4,
                alpha: float = 0.1,
                memory_mask: Optional[torch.Tensor] = None,
                allowed: Optional[torch.Tensor] = None) -> List[List[int]]:
    """Batched beam search with a key/value cache (Sec. 5.8).

    All ``B x num_beams`` hypotheses run as one batch. At each step the best
    ``2 * num_beams`` extensions of a sample are ranked by summed
    log-probability; an ``<eos>`` among the first ``num_beams`` of them ends
    a hypothesis, scored ``logp / lp(len)`` (len counts ``<eos>``), and the
    best ``num_beams`` other extensions stay alive (as in fairseq). A sample
    is done when it holds ``num_beams`` finished hypotheses and no live beam
    can still beat the ``num_beams``-th of them (bound: its log-prob over
    ``lp`` of the longest possible length, as in HF's beam scorer); at
    ``max_length`` live beams are finished as they are. With
    ``num_beams=1`` and ``alpha=0`` this is exactly greedy decoding; with
    ``alpha > 0`` a single beam may continue past greedy's ``<eos>`` when a
    longer answer could still win after length normalisation.
    """
    if not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f'num_beams must be an int >= 1, got {num_beams!r}')
    if not isinstance(alpha, (int, float)) or alpha < 0:
        raise ValueError(f'alpha must be >= 0, got {alpha!r}')
    K = num_beams
    device = memory.device
    tokens, pad, pos, lengths = left_pad(prompts, pad_id, device)
    B, P = tokens.shape
    max_new = _check_budget(max_length, P)
    rep = lambda x: x.repeat_interleave(K, dim=0)  # noqa: E731
    memory = rep(memory)
    memory_mask = None if memory_mask is None else rep(memory_mask)
    tokens, pad, pos, lengths = rep(tokens), rep(pad), rep(pos), rep(lengths)
    cache = decoder.init_cache()
    logits = decoder(
        tokens, memory, memory_mask, pos, pad, cache, last_only=True)[:, -1]
    V = logits.shape[-1]
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float('-inf')  # all beams start identical: keep one
    hist = torch.zeros(B, K, 0, dtype=torch.long, device=device)
    finals: List[List[Tuple[float, List[int]]]] = [[] for _ in range(B)]
    max_lp = length_penalty(max_new, alpha)
    done = [False] * B
    for t in range(max_new):
        logp = F.log_softmax(
            _restrict(logits.float(), allowed), dim=-1).view(B, K, V)
        cand = (scores[:, :, None] + logp).view(B, K * V)
        # dead beams (score -inf) may hold NaN rows; never pick them
        cand = cand.nan_to_num(nan=float('-inf'))
        top_v, top_i = cand.topk(2 * K, dim=1)
        top_v, top_b, top_t = (top_v.tolist(), (top_i // V).tolist(),
                               (top_i % V).tolist())
        new_beam = [list(range(K)) for _ in range(B)]
        new_tok = [[pad_id] * K for _ in range(B)]
        new_score = [[float('-inf')] * K for _ in range(B)]
        lp = length_penalty(t + 1, alpha)
        for b in range(B):
            if done[b]:
                continue
            alive = 0
            for r in range(2 * K):
                s, beam, tok = top_v[b][r], top_b[b][r], top_t[b][r]
                if s == float('-inf'):
                    break
                if tok == eos_id:
                    if r < K:
                        finals[b].append((s / lp, hist[b, beam].tolist()))
                    continue
                if alive < K:
                    new_beam[b][alive] = beam
                    new_tok[b][alive] = tok
                    new_score[b][alive] = s
                    alive += 1
            if len(finals[b]) >= K:
                # stop once no live beam can still beat the K-th finished
                # one: its log-prob only falls, and lp() is largest at the
                # longest possible length, so best / lp(max_new) bounds it
                kth = sorted((f[0] for f in finals[b]), reverse=True)[K - 1]
                bound = max(new_score[b]) / max_lp
                done[b] = bound <= kth
        beam_idx = torch.tensor(new_beam, device=device)
        nxt = torch.tensor(new_tok, device=device)
        scores = torch.tensor(new_score, device=device)
        hist = torch.cat([
            hist.gather(1, beam_idx[:, :, None].expand(-1, -1, t)), nxt[:, :,
                                                                        None]
        ],
                         dim=2)
        if all(done):
            break
        if t == max_new - 1:  # out of room: finish live beams as they are
            for b in range(B):
                if not done[b]:
                    finals[b] += [(new_score[b][k] / lp, hist[b, k].tolist())
                                  for k in range(K)
                                  if new_score[b][k] > float('-inf')]
            break
        flat = (torch.arange(B, device=device)[:, None] * K +
                beam_idx).view(-1)
        reorder_cache(cache, flat)
        pad = torch.cat([pad.index_select(0, flat),
                         pad.new_zeros(B * K, 1)],
                        dim=1)
        logits = decoder(
            nxt.view(-1, 1),
            memory,
            memory_mask, (lengths + t)[:, None],
            pad,
            cache,
            last_only=True)[:, -1]
    return [max(f, key=lambda sh: sh[0])[1] if f else [] for f in finals]


@torch.no_grad()
def score_classes(decoder,
                  memory: torch.Tensor,
                  prompts: Prompts,
                  classes: Sequence[Sequence[int]],
                  pad_id: int,
                  memory_mask: Optional[torch.Tensor] = None,
                  chunk_size: int = 64) -> torch.Tensor:
    """Summed log-likelihood ``[B, K]`` of each class's tokens (Sec. 5.8).

    Args:
        classes: ``K`` token id lists, each ending with ``<eos>`` so that a
            class that is a prefix of another ('ant' / 'ants') is not
            preferred for being shorter.
        chunk_size: Classes scored per decoder call (memory bound).

    The decoder runs teacher-forced on ``prompt + class`` (right-padded, one
    call per chunk); ``log p(class | image, prompt)`` is the sum over the
    class tokens of the log-softmax at the previous position.
    """
    if len(classes) == 0 or any(len(c) == 0 for c in classes):
        raise ValueError('classes must be non-empty token lists')
    B = memory.shape[0]
    if len(prompts) != B:
        raise ValueError(f'{len(prompts)} prompts for {B} images')
    out = []
    for c0 in range(0, len(classes), chunk_size):
        chunk = classes[c0:c0 + chunk_size]
        K = len(chunk)
        seqs = [list(p) + list(c) for p in prompts for c in chunk]
        L = max(len(s) for s in seqs) - 1
        inp = torch.full((B * K, L),
                         pad_id,
                         dtype=torch.long,
                         device=memory.device)
        tgt = torch.full_like(inp, -1)
        for i, s in enumerate(seqs):
            n_prompt = len(prompts[i // K])
            inp[i, :len(s) - 1] = torch.as_tensor(s[:-1])
            tgt[i, n_prompt - 1:len(s) - 1] = torch.as_tensor(s[n_prompt:])
        mem = memory.repeat_interleave(K, dim=0)
        mmask = None if memory_mask is None else \
            memory_mask.repeat_interleave(K, dim=0)
        logp = F.log_softmax(decoder(inp, mem, mmask).float(), dim=-1)
        ll = logp.gather(-1, tgt.clamp(min=0)[..., None])[..., 0]
        ll = torch.where(tgt >= 0, ll, torch.zeros_like(ll)).sum(-1)
        out.append(ll.view(B, K))
    return torch.cat(out, dim=1)
