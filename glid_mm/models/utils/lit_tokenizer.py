"""Offline byte-level BPE tokeniser for the LiT decoder.

The paper (Sec. 4) uses the 250k multilingual SentencePiece model of mT5.
That model is not shipped with any package here, and neither ``tokenizers``
nor ``sentencepiece`` is installed in the project environment, so this module
trains a small deterministic byte-level BPE on the training labels in pure
Python. Byte-level means every string round-trips exactly (no unknown
token), which matters because classification, counting and QA are scored by
exact string match (Sec. 4).

Vocabulary layout (ids)::

    0 <pad>   1 <bos>   2 <eos>   3 ':' separator
    4 .. 4+P-1          one token per prompt name (task names and task
                        categories, e.g. '<hym>', '<cls>'; Sec. 4.2: "a
                        single-token task prompt followed by a single-token
                        separator")
    4+P .. 4+P+255      the 256 bytes
    4+P+256 ..          BPE merges, most frequent first (ties broken by the
                        smaller pair of ids, so training is deterministic)

The whole state is a JSON-able dict (:meth:`state_dict`), which
:class:`~glid_mm.models.algorithms.LiTDecoder` stores in its checkpoint.
"""
import heapq
import json
import re
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from mmpretrain.registry import TOKENIZER

# words keep their leading space (GPT-2 style); digits are single tokens so
# that counts ('12') are spelled digit by digit.
_PRETOKEN = re.compile(r" ?[^\W\d_]+| ?\d| ?[^\s\w]+| ?_+|\s+(?!\S)|\s+")
_SPECIALS = ('<pad>', '<bos>', '<eos>', ':')
_NAME = re.compile(r'^[A-Za-z0-9_\-.]+$')


def pretokenize(text: str) -> List[str]:
    """Split ``text`` into words; ``''.join(pretokenize(t)) == t``."""
    return _PRETOKEN.findall(text)


@TOKENIZER.register_module()
class LiTBPETokenizer:
    """Byte-level BPE with single-token task prompts (Sec. 4.2).

    Args:
        vocab_size (int): Maximum vocabulary size, including the 4 specials,
            the prompt tokens and the 256 bytes. The decoder's embedding has
            exactly this many rows. Defaults to 1024.
        min_frequency (int): A pair is merged only if it occurs at least this
            often in the training corpus. Defaults to 2.
        vocab_file (str, optional): JSON written by :meth:`save`; loads a
            trained tokeniser instead of starting untrained.
    """

    PAD, BOS, EOS, SEP = 0, 1, 2, 3

    def __init__(self,
                 vocab_size: int = 1024,
                 min_frequency: int = 2,
                 vocab_file: Optional[str] = None) -> None:
        if not isinstance(vocab_size, int) or vocab_size < 261:
            raise ValueError(
                f'vocab_size must be an int >= 261 (4 specials + 1 prompt + '
                f'256 bytes), got {vocab_size!r}')
        if not isinstance(min_frequency, int) or min_frequency < 1:
            raise ValueError(
                f'min_frequency must be an int >= 1, got {min_frequency!r}')
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.prompts: List[str] = []
        self.merges: List[Tuple[int, int]] = []
        self.labels: Dict[str, List[str]] = {}
        self._rebuild()
        if vocab_file is not None:
            with open(vocab_file) as f:
                self.load_state_dict(json.load(f))

    # ------------------------------------------------------------------ state
    @property
    def is_trained(self) -> bool:
        return len(self.prompts) > 0

    @property
    def num_tokens(self) -> int:
        """Number of ids in use (<= ``vocab_size``)."""
        return self.byte_offset + 256 + len(self.merges)

    @property
    def byte_offset(self) -> int:
        return len(_SPECIALS) + len(self.prompts)

    def _rebuild(self) -> None:
        self.prompt_ids = {
            p: len(_SPECIALS) + i
            for i, p in enumerate(self.prompts)
        }
        self.ranks = {pair: i for i, pair in enumerate(self.merges)}
        off = self.byte_offset
        self.token_bytes: List[bytes] = [b''] * off
        self.token_bytes += [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self.token_bytes.append(self.token_bytes[a] + self.token_bytes[b])
        self._cache: Dict[str, List[int]] = {}

    def state_dict(self) -> dict:
        return dict(
            version=1,
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            prompts=list(self.prompts),
            merges=[list(m) for m in self.merges],
            labels={
                k: list(v)
                for k, v in self.labels.items()
            })

    def load_state_dict(self, state: dict) -> None:
        if state.get('version') != 1:
            raise ValueError(f'unknown tokenizer state version '
                             f'{state.get("version")!r}')
        if state['vocab_size'] != self.vocab_size:
            raise ValueError(
                f'saved tokenizer has vocab_size={state["vocab_size"]}, this '
                f'one {self.vocab_size}: set tokenizer.vocab_size to match')
        self.min_frequency = state['min_frequency']
        self.prompts = list(state['prompts'])
        self.merges = [tuple(m) for m in state['merges']]
        self.labels = {k: list(v) for k, v in state['labels'].items()}
        self._rebuild()

    def save(self, path: str) -> None:
        with open(path, 'w') as f:
            json.dump(self.state_dict(), f)

    # --------------------------------------------------------------- training
    def train(self,
              texts: Iterable[str],
              prompts: Sequence[str],
              labels: Optional[Dict[str, Sequence[str]]] = None) -> None:
        """Learn merges from ``texts`` (labels and questions).

        Args:
            texts: Training strings; repeated strings weigh more.
            prompts: Names that become single prompt tokens (task names and
                task categories), e.g. ``['hym', 'cls']``.
            labels: Optional ``{task: candidate labels}`` remembered for
                class scoring (Sec. 5.8) after a checkpoint is loaded.
        """
        prompts = sorted(set(prompts))
        bad = [p for p in prompts if not _NAME.match(p)]
        if not prompts or bad:
            raise ValueError(f'prompt names must be non-empty strings of '
                             f'[A-Za-z0-9_-.], got {bad or prompts}')
        self.prompts = prompts
        self.merges = []
        self.labels = {k: list(v) for k, v in (labels or {}).items()}
        self._rebuild()
        budget = self.vocab_size - self.byte_offset - 256
        if budget < 0:
            raise ValueError(
                f'vocab_size={self.vocab_size} cannot hold {len(prompts)} '
                f'prompt tokens + 260 base tokens')
        off = self.byte_offset
        word_freq = Counter()
        for text in texts:
            word_freq.update(pretokenize(text))
        words = [[off + b for b in w.encode('utf-8')] for w in word_freq]
        freqs = list(word_freq.values())
        pair_count: Dict[Tuple[int, int], int] = defaultdict(int)
        where: Dict[Tuple[int, int], set] = defaultdict(set)
        for wi, sym in enumerate(words):
            for pair in zip(sym, sym[1:]):
                pair_count[pair] += freqs[wi]
                where[pair].add(wi)
        heap = [(-c, p) for p, c in pair_count.items()]
        heapq.heapify(heap)
        while len(self.merges) < budget and heap:
            neg, pair = heapq.heappop(heap)
            if pair_count.get(pair, 0) != -neg:
                continue  # stale heap entry
            if -neg < self.min_frequency:
                break
            new_id = off + 256 + len(self.merges)
            self.merges.append(pair)
            changed = set()
            for wi in where.pop(pair, ()):
                sym = words[wi]
                merged = _merge(sym, pair, new_id)
                if merged == sym:
                    continue
                for p in zip(sym, sym[1:]):
                    pair_count[p] -= freqs[wi]
                    changed.add(p)
                for p in zip(merged, merged[1:]):
                    pair_count[p] += freqs[wi]
                    where[p].add(wi)
                    changed.add(p)
                words[wi] = merged
            pair_count.pop(pair, None)
            for p in changed:
                c = pair_count.get(p, 0)
                if c <= 0:
                    pair_count.pop(p, None)
                elif p != pair:
                    heapq.heappush(heap, (-c, p))
        self._rebuild()

    # ---------------------------------------------------------- en/decoding
    def _encode_word(self, word: str) -> List[int]:
        if word in self._cache:
            return self._cache[word]
        off = self.byte_offset
        sym = [off + b for b in word.encode('utf-8')]
        while len(sym) > 1:
            pairs = [(self.ranks.get(p, None), p) for p in zip(sym, sym[1:])]
            ranked = [rp for rp in pairs if rp[0] is not None]
            if not ranked:
                break
            rank, pair = min(ranked)
            sym = _merge(sym, pair, off + 256 + rank)
        self._cache[word] = sym
        return sym

    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` (no specials added)."""
        self._check_trained()
        if not isinstance(text, str):
            raise TypeError(f'encode expects a str, got {type(text)}')
        ids: List[int] = []
        for word in pretokenize(text):
            ids.extend(self._encode_word(word))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """String of ``ids``; specials and prompt tokens are skipped, decoding
        stops at the first ``<eos>``."""
        out = b''
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i < 0 or i >= self.num_tokens:
                raise ValueError(f'token id {i} out of range '
                                 f'[0, {self.num_tokens})')
            out += self.token_bytes[i]
        return out.decode('utf-8', errors='replace')

    def prompt_id(self, name: str) -> int:
        """Id of the single prompt token for task/category ``name``."""
        self._check_trained()
        if name not in self.prompt_ids:
            raise KeyError(f'prompt {name!r} was not seen when the tokenizer '
                           f'was trained; known: {self.prompts}')
        return self.prompt_ids[name]

    def _check_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError(
                'LiTBPETokenizer is untrained: train it on the training '
                'labels (LiTTokenizerHook does this before training) or load '
                'a checkpoint / vocab_file that holds one')

    def __repr__(self) -> str:
        return (f'LiTBPETokenizer(vocab_size={self.vocab_size}, prompts='
                f'{self.prompts}, merges={len(self.merges)})')


def _merge(sym: List[int], pair: Tuple[int, int], new_id: int) -> List[int]:
    out, i, n = [], 0, len(sym)
    while i < n:
        if i < n - 1 and sym[i] == pair[0] and sym[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(sym[i])
            i += 1
    return out
