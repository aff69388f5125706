"""Offline BLEU-4 and CIDEr-D for caption-style LiT-decoder tasks.

mmpretrain's ``COCOCaption`` metric needs ``pycocoevalcap``, which is not
installed here (and whose PTB tokeniser, METEOR and SPICE need Java). These
are pure-Python re-implementations of the two scores the paper reports
(CIDEr, Sec. 4) or that captioning work usually adds (BLEU-4), following
``pycocoevalcap``'s ``bleu_scorer.py`` and ``cider_scorer.py``:

* BLEU-4: corpus-level clipped n-gram precisions (n = 1..4), geometric mean,
  brevity penalty against the *closest* reference length, with the same
  ``1e-9`` / ``1e-15`` smoothing of zero counts (except that an order
  with no n-grams at all counts as precision ~0, not ~1e6).
* CIDEr-D: per image, TF-IDF n-gram vectors (IDF from the references of the
  whole evaluated set), clipped cosine similarity per n averaged over
  n = 1..4 and over references, times a Gaussian length penalty
  ``exp(-(len_hyp - len_ref)^2 / (2 * 6^2))``, times 10; the corpus score
  is the mean over images.

Tokenisation differs from the Java PTB tokeniser: lower-case and drop
punctuation (:func:`normalize`), which is what the PTB step mostly does for
English captions; scores may differ slightly from the official toolkit.
"""
import math
import re
from collections import Counter
from typing import Dict, List, Sequence, Tuple

_PUNCT = re.compile(r"[^\w\s]")


def normalize(text: str) -> List[str]:
    """Lower-case, strip punctuation, split on whitespace."""
    return _PUNCT.sub(' ', text.lower()).split()


def ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu(hyps: Sequence[str],
         refs: Sequence[Sequence[str]],
         max_n: int = 4) -> List[float]:
    """Corpus BLEU-1..``max_n`` (pycocoevalcap's ``closest`` option).

    Args:
        hyps: One hypothesis per image.
        refs: The references of each image.
    """
    _check(hyps, refs)
    correct, guess = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, rs in zip(hyps, refs):
        h = normalize(hyp)
        rws = [normalize(r) for r in rs]
        hyp_len += len(h)
        # closest reference length, the shorter one on ties
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rws)[1]
        for n in range(1, max_n + 1):
            hc = ngrams(h, n)
            max_ref = Counter()
            for r in rws:
                for g, c in ngrams(r, n).items():
                    max_ref[g] = max(max_ref[g], c)
            correct[n - 1] += sum(min(c, max_ref[g]) for g, c in hc.items())
            guess[n - 1] += max(len(h) - n + 1, 0)
    tiny, small = 1e-9, 1e-15
    bp = 1. if hyp_len >= ref_len else math.exp(1 - ref_len /
                                                (hyp_len + small))
    scores, log_sum = [], 0.
    for n in range(max_n):
        # no n-grams at all: precision ~0 (pycocoevalcap would divide
        # 1e-9 by 1e-15 and report a huge score)
        prec = (correct[n] + tiny) / (guess[n] + small) if guess[n] else tiny
        log_sum += math.log(prec)
        scores.append(bp * math.exp(log_sum / (n + 1)))
    return scores


def _tfidf(counts: Dict[int, Counter], df: Counter,
           log_n: float) -> Tuple[List[Dict[tuple, float]], List[float]]:
    vecs, norms = [], []
    for n in range(1, 5):
        vec = {
            g: c * (log_n - math.log(max(1., df[g])))
            for g, c in counts[n].items()
        }
        vecs.append(vec)
        norms.append(math.sqrt(sum(v * v for v in vec.values())))
    return vecs, norms


def cider_d(hyps: Sequence[str],
            refs: Sequence[Sequence[str]],
            sigma: float = 6.) -> Tuple[float, List[float]]:
    """CIDEr-D: ``(corpus score, per-image scores)``."""
    _check(hyps, refs)
    ref_counts = [[{
        n: ngrams(normalize(r), n)
        for n in range(1, 5)
    } for r in rs] for rs in refs]
    df = Counter()
    for rcs in ref_counts:
        df.update({g for rc in rcs for n in rc for g in rc[n]})
    log_n = math.log(float(len(refs)))
    per_image = []
    for hyp, rs, rcs in zip(hyps, refs, ref_counts):
        h = normalize(hyp)
        hv, hn = _tfidf({n: ngrams(h, n) for n in range(1, 5)}, df, log_n)
        total = 0.
        for r, rc in zip(rs, rcs):
            rv, rn = _tfidf(rc, df, log_n)
            delta = len(h) - len(normalize(r))
            sims = []
            for n in range(4):
                val = sum(
                    min(v, rv[n][g]) * rv[n][g] for g, v in hv[n].items()
                    if g in rv[n])
                if hn[n] != 0 and rn[n] != 0:
                    val /= hn[n] * rn[n]
                sims.append(val * math.exp(-delta**2 / (2 * sigma**2)))
            total += sum(sims) / 4.
        per_image.append(total / len(rs) * 10.)
    return sum(per_image) / len(per_image), per_image


def _check(hyps, refs) -> None:
    if len(hyps) != len(refs) or not hyps:
        raise ValueError(f'need one non-empty reference list per hypothesis,'
                         f' got {len(hyps)} hypotheses, {len(refs)} lists')
    if any(len(r) == 0 for r in refs):
        raise ValueError('every hypothesis needs at least one reference')
