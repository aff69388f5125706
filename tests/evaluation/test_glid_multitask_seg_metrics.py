"""DetSemSegIoUMetric and ThingsCocoMetric on hand-made predictions whose
numbers are worked out below."""
import json

import pytest
import torch
from mmdet.evaluation import CocoMetric
from mmseg.evaluation import IoUMetric

import glid_mm  # noqa: F401
from glid_mm.evaluation import DetSemSegIoUMetric, ThingsCocoMetric

CLASSES = ('a', 'b', 'c')
# ground truth and prediction of one 2 x 3 image (255 = ignored)
GT = [[0, 0, 1], [1, 2, 255]]
PRED = [[0, 1, 1], [1, 2, 2]]
# by hand, over the 5 labelled pixels:
#   class a: gt {(0,0), (0,1)}, pred {(0,0)}: I = 1, U = 2, IoU 1/2, acc 1/2
#   class b: gt {(0,2), (1,0)}, pred {(0,1), (0,2), (1,0)}: I = 2, U = 3,
#            IoU 2/3, acc 1
#   class c: gt {(1,1)}, pred {(1,1)} ((1,2) is ignored): IoU 1, acc 1
#   aAcc = 4 / 5
MIOU = 100 * (1 / 2 + 2 / 3 + 1) / 3
MACC = 100 * (1 / 2 + 1 + 1) / 3
AACC = 100 * 4 / 5


def _sem(values, field):
    return {field: torch.tensor(values).unsqueeze(0)}  # [1, H, W]


def _sample(gt=GT, pred=PRED, field='sem_seg'):
    return dict(pred_sem_seg=_sem(pred, field), gt_sem_seg=_sem(gt, field))


def _evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_miou_by_hand():
    result = _evaluate(DetSemSegIoUMetric(iou_metrics=['mIoU']), [_sample()])
    assert result['mIoU'] == pytest.approx(round(MIOU, 2))
    assert result['mAcc'] == pytest.approx(round(MACC, 2))
    assert result['aAcc'] == pytest.approx(round(AACC, 2))


def test_accumulates_pixels_over_images():
    """Two images: the second predicts all of class a right (2 pixels of a,
    IoU 1): class a becomes I = 3, U = 4 over the two images."""
    second = _sample(gt=[[0, 0]], pred=[[0, 0]])
    result = _evaluate(DetSemSegIoUMetric(), [_sample(), second])
    assert result['mIoU'] == pytest.approx(
        round(100 * (3 / 4 + 2 / 3 + 1) / 3, 2))
    assert result['aAcc'] == pytest.approx(round(100 * 6 / 7, 2))


def test_same_numbers_as_mmseg_with_data_fields():
    ours = _evaluate(
        DetSemSegIoUMetric(iou_metrics=['mIoU', 'mDice']), [_sample()])
    theirs = _evaluate(
        IoUMetric(iou_metrics=['mIoU', 'mDice']), [_sample(field='data')])
    assert ours == theirs
    # a sample already in mmseg's format passes through unchanged
    mixed = dict(
        pred_sem_seg=_sem(PRED, 'data'), gt_sem_seg=_sem(GT, 'sem_seg'))
    assert _evaluate(
        DetSemSegIoUMetric(iou_metrics=['mIoU', 'mDice']), [mixed]) == theirs


def test_input_samples_not_modified():
    sample = _sample()
    _evaluate(DetSemSegIoUMetric(), [sample])
    assert set(sample['pred_sem_seg']) == {'sem_seg'}
    assert set(sample['gt_sem_seg']) == {'sem_seg'}


def test_registered_in_mmdet():
    from mmdet.registry import METRICS
    from mmengine.registry import DefaultScope

    # mmengine builds in the current scope's registry: make it mmdet's
    # (another test may have left its own scope current)
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(
            dict(type='DetSemSegIoUMetric', iou_metrics=['mIoU']))
        things = METRICS.build(dict(type='ThingsCocoMetric'))
    assert isinstance(metric, DetSemSegIoUMetric)
    assert isinstance(things, ThingsCocoMetric)


def test_missing_fields():
    metric = DetSemSegIoUMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(KeyError, match=r"needs \['gt_sem_seg'\]"):
        metric.process({}, [dict(pred_sem_seg=_sem(PRED, 'sem_seg'))])
    with pytest.raises(
            KeyError, match=r"needs \['pred_sem_seg', "
            r"'gt_sem_seg'\]"):
        metric.process({}, [dict()])
    bad = _sample()
    bad['gt_sem_seg'] = dict(seg=torch.zeros(1, 2, 3))
    with pytest.raises(
            KeyError, match='gt_sem_seg has neither "sem_seg" '
            'nor "data".*seg'):
        metric.process({}, [bad])
    assert metric.results == []


# --- ThingsCocoMetric ---

THINGS = ('cat', 'dog')
ALL = THINGS + ('sky', )  # mmdet's panoptic order: things, then stuff


@pytest.fixture
def coco_json(tmp_path):
    """One 100 x 100 image: a cat, a dog and a sky segment."""
    data = dict(
        images=[dict(id=1, file_name='1.jpg', width=100, height=100)],
        categories=[
            dict(id=1, name='cat'),
            dict(id=2, name='dog'),
            dict(id=7, name='sky')
        ],
        annotations=[
            dict(
                id=1,
                image_id=1,
                category_id=1,
                bbox=[10, 10, 30, 30],
                area=900,
                iscrowd=0),
            dict(
                id=2,
                image_id=1,
                category_id=2,
                bbox=[50, 50, 40, 20],
                area=800,
                iscrowd=0),
            dict(
                id=3,
                image_id=1,
                category_id=7,
                bbox=[0, 0, 100, 40],
                area=4000,
                iscrowd=0),
        ])
    path = tmp_path / 'panoptic_det.json'
    path.write_text(json.dumps(data))
    return str(path)


def _perfect_things():
    """Exact boxes (xyxy) for the cat (label 0) and the dog (label 1)."""
    return [
        dict(
            img_id=1,
            ori_shape=(100, 100),
            pred_instances=dict(
                bboxes=torch.tensor([[10., 10., 40., 40.],
                                     [50., 50., 90., 70.]]),
                scores=torch.tensor([0.9, 0.8]),
                labels=torch.tensor([0, 1])))
    ]


def _coco_eval(metric, meta):
    metric.dataset_meta = meta
    metric.process({}, _perfect_things())
    return metric.evaluate(1)


def test_things_metric_ignores_stuff_annotations(coco_json):
    """Perfect thing boxes: AP 1 over the two things. The stock metric
    counts sky as a class with ground truth and no prediction: AP 0 for it,
    mAP 2/3."""
    meta = dict(classes=ALL, thing_classes=THINGS)
    ours = _coco_eval(ThingsCocoMetric(ann_file=coco_json), meta)
    assert ours['coco/bbox_mAP'] == pytest.approx(1.0)
    assert ours['coco/bbox_mAP_50'] == pytest.approx(1.0)
    stock = _coco_eval(CocoMetric(ann_file=coco_json), meta)
    assert stock['coco/bbox_mAP'] == pytest.approx(0.667)


def test_things_metric_maps_labels_to_thing_ids(coco_json):
    """Labels 0, 1 are the ids of cat and dog: swapped labels give AP 0."""
    metric = ThingsCocoMetric(ann_file=coco_json)
    metric.dataset_meta = dict(classes=ALL, thing_classes=THINGS)
    samples = _perfect_things()
    samples[0]['pred_instances']['labels'] = torch.tensor([1, 0])
    metric.process({}, samples)
    assert metric.evaluate(1)['coco/bbox_mAP'] == pytest.approx(0.0)
    assert metric.cat_ids == [1, 2]


def test_things_metric_errors(coco_json):
    with pytest.raises(
            KeyError, match=r'needs dataset_meta\['
            '"thing_classes"'):
        _coco_eval(ThingsCocoMetric(ann_file=coco_json), dict(classes=ALL))
    with pytest.raises(ValueError, match='needs ann_file'):
        metric = ThingsCocoMetric()
        metric.dataset_meta = dict(classes=ALL, thing_classes=THINGS)
        metric.compute_metrics([])


def test_things_metric_missing_thing_category(coco_json):
    with pytest.raises(
            ValueError, match=r"lacks thing categories "
            r"\['bird'\]"):
        _coco_eval(
            ThingsCocoMetric(ann_file=coco_json),
            dict(classes=ALL + ('bird', ), thing_classes=THINGS + ('bird', )))


def test_explicit_cat_ids_are_kept(coco_json):
    """A metric whose cat_ids are already set (e.g. by an earlier
    evaluation) does not look them up again."""
    metric = ThingsCocoMetric(ann_file=coco_json)
    metric.cat_ids = [1, 2]
    metric.dataset_meta = dict(classes=ALL)  # no thing_classes needed
    metric.process({}, _perfect_things())
    assert metric.evaluate(1)['coco/bbox_mAP'] == pytest.approx(1.0)
