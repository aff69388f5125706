"""Decoding strategies (Sec. 5.8) on a hand-checkable bigram 'decoder' and
on the real LiTTextDecoder."""
import math

import pytest
import torch

from glid_mm.models.decoders.lit_decoding import (beam_search,
                                                  best_of_n_decode, left_pad,
                                                  length_penalty, pick_tokens,
                                                  sample_decode, score_classes)
from glid_mm.models.decoders.lit_text_decoder import LiTTextDecoder

PAD, BOS, EOS, A, B, C = range(6)


class BigramDecoder:
    """p(next | previous token) from a table: hand-computable likelihoods.
    Same call signature as LiTTextDecoder; ignores image and cache."""

    def __init__(self, rows):
        table = torch.zeros(6, 6)
        for prev, probs in rows.items():
            for tok, p in probs.items():
                table[prev, tok] = p
        assert torch.allclose(table[list(rows)].sum(1), torch.ones(len(rows)))
        self.logp = table.log()

    def init_cache(self):
        return dict(length=0, layers=[])

    def __call__(self,
                 tokens,
                 memory,
                 memory_mask=None,
                 positions=None,
                 key_padding_mask=None,
                 cache=None,
                 last_only=False):
        out = self.logp[tokens]
        return out[:, -1:] if last_only else out


# 'a' is the likelier first token, but 'b c' is the likelier class:
#   log p('a') = log(.5 * .2) = log .1 ;  log p('b c') = log(.4 * .8 * .9)
SCORING = BigramDecoder({
    BOS: {
        EOS: .05,
        A: .5,
        B: .4,
        C: .05
    },
    A: {
        EOS: .2,
        A: .4,
        B: .2,
        C: .2
    },
    B: {
        EOS: .05,
        A: .05,
        B: .1,
        C: .8
    },
    C: {
        EOS: .9,
        A: .05,
        B: .05
    },
})
# log p('a') = log .3 (2 tokens with <eos>), log p('b c') = log .288 (3):
# 'a' wins without length normalisation, 'b c' with alpha = 1:
#   -1.204 / (7/6) = -1.032  <  -1.245 / (8/6) = -0.934
LENGTH = BigramDecoder({
    BOS: {
        EOS: .05,
        A: .5,
        B: .4,
        C: .05
    },
    A: {
        EOS: .6,
        A: .2,
        B: .1,
        C: .1
    },
    B: {
        EOS: .05,
        A: .05,
        B: .1,
        C: .8
    },
    C: {
        EOS: .9,
        A: .05,
        B: .05
    },
})
MEM = torch.zeros(2, 1, 1)
ARGS = dict(eos_id=EOS, pad_id=PAD, max_length=8)


def test_class_scoring_picks_highest_summed_log_likelihood():
    ll = score_classes(
        SCORING, MEM, [[BOS], [BOS]], [[A, EOS], [B, C, EOS]], pad_id=PAD)
    expected = torch.tensor([math.log(.5 * .2), math.log(.4 * .8 * .9)])
    assert torch.allclose(ll, expected.expand(2, 2), atol=1e-5)
    assert ll.argmax(1).tolist() == [1, 1]
    # greedy goes for the likelier first token and never recovers
    assert sample_decode(SCORING, MEM, [[BOS]] * 2, **ARGS)[0][0] == A


def test_class_scoring_with_prompt_and_chunks():
    prompts = [[BOS, A], [BOS]]  # first sample: classes continue after 'a'
    ll = score_classes(
        SCORING,
        MEM,
        prompts, [[A, EOS], [B, C, EOS]],
        pad_id=PAD,
        chunk_size=1)
    assert math.isclose(float(ll[0, 0]), math.log(.4 * .2), rel_tol=1e-5)
    assert math.isclose(float(ll[0, 1]), math.log(.2 * .8 * .9), rel_tol=1e-5)


def test_beam_finds_likelier_sequence_than_greedy():
    greedy = sample_decode(SCORING, MEM, [[BOS]] * 2, **ARGS)
    assert greedy[0] == [A] * 7  # 'a' loops until max_length
    beam = beam_search(
        SCORING, MEM, [[BOS]] * 2, num_beams=4, alpha=0., **ARGS)
    assert beam == [[B, C], [B, C]]


def test_beam_length_normalisation():
    assert length_penalty(3, 0.) == 1.
    assert math.isclose(length_penalty(3, 1.), 8 / 6)
    prompts = [[BOS]] * 2
    assert beam_search(
        LENGTH, MEM, prompts, num_beams=4, alpha=0., **ARGS)[0] == [A]
    assert beam_search(
        LENGTH, MEM, prompts, num_beams=4, alpha=1., **ARGS)[0] == [B, C]


@pytest.mark.parametrize('alpha', [0., 0.1])
def test_beam_one_equals_greedy_bigram(alpha):
    for table in (SCORING, LENGTH):
        assert beam_search(
            table, MEM, [[BOS]] * 2, num_beams=1, alpha=alpha,
            **ARGS) == sample_decode(table, MEM, [[BOS]] * 2, **ARGS)


@pytest.fixture(scope='module')
def decoder():
    torch.manual_seed(0)
    dec = LiTTextDecoder(
        vocab_size=50,
        memory_dims=16,
        arch=dict(embed_dims=32, num_heads=4, ffn_dims=64, num_layers=2),
        max_length=20,
        drop_rate=0.)
    dec.init_weights()
    return dec.eval()


PROMPTS = [[1, 7, 3], [1, 9, 3, 11, 12, 3], [1]]  # different lengths


def test_cached_equals_uncached_greedy(decoder):
    mem = torch.randn(3, 5, 16)
    kw = dict(eos_id=2, pad_id=0, max_length=20)
    cached = sample_decode(decoder, mem, PROMPTS, use_cache=True, **kw)
    uncached = sample_decode(decoder, mem, PROMPTS, use_cache=False, **kw)
    assert cached == uncached
    assert sum(len(c) for c in cached) > 10  # real sequences were compared


def test_left_padding_does_not_change_output(decoder):
    mem = torch.randn(3, 5, 16)
    kw = dict(eos_id=2, pad_id=0, max_length=20)
    batched = sample_decode(decoder, mem, PROMPTS, **kw)
    for i, p in enumerate(PROMPTS):
        alone = sample_decode(decoder, mem[i:i + 1], [p],
                              **dict(kw, max_length=20 - 6 + len(p)))
        n = min(len(alone[0]), len(batched[i]))
        assert alone[0][:n] == batched[i][:n]


@pytest.mark.parametrize('alpha', [0.])
def test_beam_one_equals_greedy_real_decoder(decoder, alpha):
    mem = torch.randn(3, 5, 16)
    kw = dict(eos_id=2, pad_id=0, max_length=20)
    assert beam_search(
        decoder, mem, PROMPTS, num_beams=1, alpha=alpha,
        **kw) == sample_decode(decoder, mem, PROMPTS, **kw)


def test_beam_search_batched_beams_match_single(decoder):
    mem = torch.randn(3, 5, 16)
    kw = dict(eos_id=2, pad_id=0, max_length=20, num_beams=3, alpha=0.1)
    batched = beam_search(decoder, mem, PROMPTS[:1] * 3, **kw)
    for i in range(3):
        assert beam_search(decoder, mem[i:i + 1], PROMPTS[:1],
                           **kw)[0] == batched[i]


def test_beam_keeps_searching_while_a_live_beam_can_win():
    # 2 beams: '' (p .05) and 'c' (p .045) finish first, but the live 'b c'
    # (p .32 so far) can still win and does: log .288
    assert beam_search(
        SCORING, MEM, [[BOS]] * 2, num_beams=2, alpha=0., **ARGS)[0] == [B, C]


def test_allowed_tokens_restrict_generation():
    allowed = torch.tensor([False, False, True, False, True, True])  # no 'a'
    assert sample_decode(
        SCORING, MEM, [[BOS]] * 2, allowed=allowed, **ARGS)[0] == [B, C]
    assert beam_search(
        SCORING,
        MEM, [[BOS]] * 2,
        num_beams=2,
        alpha=0.,
        allowed=allowed,
        **ARGS)[0] == [B, C]


def test_samplers():
    logits = torch.tensor([[0., 3., 1., 2.]]).log_softmax(-1)
    g = torch.Generator().manual_seed(0)
    assert pick_tokens(logits).tolist() == [1]
    assert pick_tokens(logits, 1., top_k=1, generator=g).tolist() == [1]
    assert pick_tokens(logits, 1., top_p=1e-6, generator=g).tolist() == [1]
    draws = torch.cat(
        [pick_tokens(logits.expand(200, 4), 1., top_k=2,
                     generator=g)]).tolist()
    assert set(draws) == {1, 3}  # only the two best tokens
    # nucleus 0.9 of softmax([0,3,1,2]) = [.032, .644, .087, .237] keeps
    # tokens 1, 3 and 2 (mass before 2 is .881 < .9) but never 0
    draws = pick_tokens(
        logits.expand(400, 4), 1., top_p=0.9, generator=g).tolist()
    assert set(draws) == {1, 2, 3}
    a = pick_tokens(
        logits.expand(50, 4), 2., generator=torch.Generator().manual_seed(3))
    b = pick_tokens(
        logits.expand(50, 4), 2., generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_temperature_zero_sampling_is_greedy(decoder):
    mem = torch.randn(3, 5, 16)
    kw = dict(eos_id=2, pad_id=0, max_length=20)
    assert sample_decode(
        decoder, mem, PROMPTS, temperature=0., top_k=5,
        **kw) == sample_decode(decoder, mem, PROMPTS, **kw)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='temperature'):
        sample_decode(SCORING, MEM, [[BOS]] * 2, temperature=-1., **ARGS)
    with pytest.raises(ValueError, match='top_k'):
        sample_decode(SCORING, MEM, [[BOS]] * 2, top_k=-2, **ARGS)
    with pytest.raises(ValueError, match='top_p'):
        sample_decode(SCORING, MEM, [[BOS]] * 2, top_p=0., **ARGS)
    with pytest.raises(ValueError, match='num_beams'):
        beam_search(SCORING, MEM, [[BOS]] * 2, num_beams=0, **ARGS)
    with pytest.raises(ValueError, match='alpha'):
        beam_search(SCORING, MEM, [[BOS]] * 2, alpha=-0.1, **ARGS)
    with pytest.raises(ValueError, match='no room'):
        sample_decode(SCORING, MEM, [[BOS] * 8] * 2, **ARGS)
    with pytest.raises(ValueError, match='prompts'):
        left_pad([[]], 0, 'cpu')
    with pytest.raises(ValueError, match='classes'):
        score_classes(SCORING, MEM, [[BOS]] * 2, [], pad_id=PAD)
    with pytest.raises(ValueError, match='prompts for'):
        score_classes(SCORING, MEM, [[BOS]], [[A, EOS]], pad_id=PAD)


def _bigram_logp(decoder, ids, max_new):
    """Log-likelihood of ``ids`` and the ``<eos>`` after them (absent when
    the output ran out of budget)."""
    seq = [BOS] + list(ids) + ([EOS] if len(ids) < max_new else [])
    return sum(float(decoder.logp[a, b]) for a, b in zip(seq, seq[1:]))


# SCORING plus rows for what a finished row feeds back (padding): real
# decoders give finite logits there, a table needs them filled
SAMPLING = BigramDecoder({
    **{
        k: {
            t: float(SCORING.logp[k, t].exp())
            for t in range(6)
        }
        for k in (BOS, A, B, C)
    },
    PAD: {
        t: 1 / 6
        for t in range(6)
    },
    EOS: {
        t: 1 / 6
        for t in range(6)
    },
})


def test_best_of_n_keeps_the_most_likely_sample():
    """Fig. 8's 1 / 4 / 8 / 16 samples: every sample's score is its
    hand-computed log-likelihood, and best-of-16 returns the argmax of
    the 16 samples drawn for each prompt (same draws: same generator)."""
    memory = torch.zeros(2 * 16, 1, 4)
    args = dict(eos_id=EOS, pad_id=PAD, max_length=6, temperature=1.)
    ids, scores, lengths = sample_decode(
        SAMPLING,
        memory, [[BOS]] * 32,
        return_scores=True,
        generator=torch.Generator().manual_seed(3),
        **args)
    for row, score, length in zip(ids, scores.tolist(), lengths.tolist()):
        assert score == pytest.approx(_bigram_logp(SAMPLING, row, 5), abs=1e-5)
        assert length == min(len(row) + 1, 5)
    assert len({tuple(r) for r in ids}) > 2  # the draws differ
    best = best_of_n_decode(
        SAMPLING,
        torch.zeros(2, 1, 4), [[BOS]] * 2,
        num_samples=16,
        generator=torch.Generator().manual_seed(3),
        **args)
    for k in range(2):
        block = scores[16 * k:16 * (k + 1)]
        assert best[k] == ids[16 * k + int(block.argmax())]
    # the likeliest sequence 'b c' (log .288) is among 16 draws here
    assert best == [[B, C], [B, C]]
    single = best_of_n_decode(
        SAMPLING,
        torch.zeros(2, 1, 4), [[BOS]] * 2,
        num_samples=1,
        generator=torch.Generator().manual_seed(3),
        **args)
    assert single == sample_decode(
        SAMPLING,
        torch.zeros(2, 1, 4), [[BOS]] * 2,
        generator=torch.Generator().manual_seed(3),
        **args)
    with pytest.raises(ValueError, match='num_samples'):
        best_of_n_decode(SAMPLING, memory, [[BOS]], num_samples=0, **args)
