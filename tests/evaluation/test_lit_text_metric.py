"""LiTTextMetric: exact match per task, CIDEr/BLEU for caption tasks."""
import pytest

from glid_mm.evaluation import LiTTextMetric


def _s(task, pred, refs, img, weights=None):
    return dict(
        task=task,
        pred_text=pred,
        gt_texts=refs,
        img_path=img,
        gt_text_weights=weights)


def test_per_task_accuracy_and_caption_scores():
    metric = LiTTextMetric(caption_tasks=['cap'])
    metric.process(
        None,
        [
            _s('hym', 'ants', ['ants'], 'x1'),
            _s('hym', 'bees ', ['ants'], 'x2'),
            _s('vqa', ' no', ['no', 'yes'], 'x3'),  # the reference: 'no'
            _s('vqa', 'yes', ['no', 'yes'], 'x4'),  # another annotator's
            _s('cap', 'a cat', ['a cat'], 'c1'),
            _s('cap', 'a dog', ['a dog'], 'c2'),
        ])
    out = metric.evaluate(6)
    assert out['lit/hym/accuracy'] == 50.
    assert out['lit/vqa/accuracy'] == 50.  # exact match with the reference
    assert out['lit/mean_accuracy'] == 50.  # caption tasks excluded
    assert 'lit/vqa/vqa_accuracy' not in out  # no annotator shares given
    assert out['lit/cap/CIDEr'] == pytest.approx(500.)  # 100 x 5.0
    assert out['lit/cap/BLEU-4'] < 1.  # 2-word captions have no 4-grams


def test_strict_matching_and_errors():
    metric = LiTTextMetric(strip=False)
    metric.process(None, [_s('hym', 'ants ', ['ants'], 'x')])
    assert metric.evaluate(1)['lit/hym/accuracy'] == 0.
    with pytest.raises(TypeError, match='list of task names'):
        LiTTextMetric(caption_tasks='cap')
    with pytest.raises(KeyError, match='pred_text'):
        LiTTextMetric().process(None, [dict(task='x', gt_texts=['a'])])


def test_vqa_accuracy_counts_annotators():
    """min(#annotators / 3, 1) with 10 annotators: 'yes' by 6, 'no' by 2,
    'maybe' by 1 (shares 0.6 / 0.2 / 0.1), the paper's exact match against
    the most-voted answer beside it."""
    refs, weights = ['yes', 'no', 'maybe'], [0.6, 0.2, 0.1]
    metric = LiTTextMetric()
    metric.process(
        None,
        [
            _s('vqa', 'yes', refs, 'a', weights),  # exact 1, vqa 1
            _s('vqa', 'no', refs, 'b', weights),  # exact 0, vqa 2/3
            _s('vqa', 'maybe', refs, 'c', weights),  # exact 0, vqa 1/3
            _s('vqa', 'blue', refs, 'd', weights),  # exact 0, vqa 0
        ])
    out = metric.evaluate(4)
    assert out['lit/vqa/accuracy'] == 25.
    assert out['lit/vqa/vqa_accuracy'] == pytest.approx(
        100 * (1 + 2 / 3 + 1 / 3 + 0) / 4)
