"""LiTTextMetric: exact match per task, CIDEr/BLEU for caption tasks."""
import pytest

from glid_mm.evaluation import LiTTextMetric


def _s(task, pred, refs, img):
    return dict(task=task, pred_text=pred, gt_texts=refs, img_path=img)


def test_per_task_accuracy_and_caption_scores():
    metric = LiTTextMetric(caption_tasks=['cap'])
    metric.process(
        None,
        [
            _s('hym', 'ants', ['ants'], 'x1'),
            _s('hym', 'bees ', ['ants'], 'x2'),
            _s('vqa', ' yes', ['no', 'yes'], 'x3'),  # any reference counts
            _s('cap', 'a cat', ['a cat'], 'c1'),
            _s('cap', 'a dog', ['a dog'], 'c2'),
        ])
    out = metric.evaluate(5)
    assert out['lit/hym/accuracy'] == 50.
    assert out['lit/vqa/accuracy'] == 100.
    assert out['lit/mean_accuracy'] == 75.  # caption tasks excluded
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
