"""Offline BLEU / CIDEr-D against hand-worked examples."""
import math

import pytest

from glid_mm.evaluation.lit_caption_scores import bleu, cider_d, normalize


def test_normalize():
    assert normalize('A Dog, running!') == ['a', 'dog', 'running']


def test_bleu_hand_worked():
    # p1..p4 = 5/6, 3/5, 2/4, 1/3; equal lengths -> no brevity penalty
    b = bleu(['the cat sat on the mat'], [['the cat sat on a mat']])
    assert b[0] == pytest.approx(5 / 6, rel=1e-6)
    assert b[1] == pytest.approx(math.sqrt(5 / 6 * 3 / 5), rel=1e-6)
    assert b[3] == pytest.approx((1 / 12)**0.25, rel=1e-6)


def test_bleu_brevity_and_closest_reference():
    # c = 2 < r = 6: BP = exp(1 - 6/2); precisions 1
    b = bleu(['the cat'], [['the cat sat on a mat']], max_n=2)
    assert b[1] == pytest.approx(math.exp(-2), rel=1e-6)
    # refs of 2 and 5 words: the closest (2) is used, c = 3 > 2 -> BP = 1
    b = bleu(['a b c'], [['a b', 'a b c d e']], max_n=1)
    assert b[0] == pytest.approx(1.)


def test_cider_d_hand_worked():
    refs = [['a cat'], ['a dog']]
    # idf('a') = log 2 - log 2 = 0, idf('cat') = idf('a cat') = log 2:
    # n=1,2 cosine 1, n=3,4 empty -> mean 0.5, x10 = 5
    score, per = cider_d(['a cat', 'a dog'], refs)
    assert per == pytest.approx([5., 5.]) and score == pytest.approx(5.)
    score, per = cider_d(['a cat', 'a cat'], refs)
    assert per == pytest.approx([5., 0.]) and score == pytest.approx(2.5)
    # 'a cat cat': n=1 clipped cosine 1/2, n=2 1/sqrt(2), n=3 0 (empty
    # reference), length penalty exp(-1 / 72)
    _, per = cider_d(['a cat cat', 'a dog'], refs)
    expected = (0.5 + 1 / math.sqrt(2)) / 4 * 10 * math.exp(-1 / 72)
    assert per[0] == pytest.approx(expected, rel=1e-9)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='reference'):
        bleu(['a'], [])
    with pytest.raises(ValueError, match='at least one'):
        cider_d(['a'], [[]])
