"""Metrics for GLID multi-task segmentation in mmdet (Sec. 5.3, Table 3).

Both are thin subclasses of the toolboxes' metrics; only the inputs are
adapted, the numbers are mmseg's / pycocotools'.
"""
from typing import Optional, Sequence

from mmdet.evaluation import CocoMetric
from mmseg.evaluation import IoUMetric

from glid_mm.registry import METRICS


@METRICS.register_module(scopes=('mmdet', ))
class DetSemSegIoUMetric(IoUMetric):
    """mmseg's :class:`IoUMetric` (mIoU, aAcc, ...) for mmdet data samples.

    mmdet packs semantic maps as ``PixelData(sem_seg=...)`` while mmseg's
    metric reads ``PixelData(data=...)``; this subclass only renames the
    field of ``gt_sem_seg`` and ``pred_sem_seg`` before mmseg's
    :meth:`IoUMetric.process`, so the numbers are mmseg's. Used by the GLID
    multi-task model (:class:`GLIDMultiTaskMaskFormer`, Sec. 5.3 / Table 3
    "mIoU") next to mmdet's ``CocoPanopticMetric`` and ``CocoMetric`` in one
    validation pass. ``dataset_meta['classes']`` (things then stuff for
    mmdet's panoptic datasets) gives the classes; 255 is ignored.

    Args:
        As :class:`mmseg.evaluation.IoUMetric`.
    """

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        renamed = []
        for sample in data_samples:
            missing = [
                k for k in ('pred_sem_seg', 'gt_sem_seg') if k not in sample
            ]
            if missing:
                raise KeyError(
                    f'DetSemSegIoUMetric needs {missing} in each data '
                    'sample (a semantic prediction, e.g. the semantic task '
                    'of GLIDMultiTaskMaskFormer, and gt_sem_seg from '
                    'LoadPanopticAnnotations / LoadAnnotations with_seg)')
            sample = dict(sample)
            for key in ('pred_sem_seg', 'gt_sem_seg'):
                field = sample[key]
                if 'data' not in field:
                    if 'sem_seg' not in field:
                        raise KeyError(f'{key} has neither "sem_seg" nor '
                                       f'"data": {sorted(field)}')
                    sample[key] = dict(data=field['sem_seg'])
            renamed.append(sample)
        super().process(data_batch, renamed)


@METRICS.register_module(scopes=('mmdet', ))
class ThingsCocoMetric(CocoMetric):
    """mmdet's :class:`CocoMetric` restricted to the thing classes.

    A panoptic dataset's COCO-detection-format json (e.g. panopticapi's
    ``panoptic2detection`` output) holds every segment, stuff included, and
    ``dataset_meta['classes']`` lists things then stuff. Evaluating instance
    predictions against it with the stock metric would count every stuff
    category as a class with ground truth and no prediction (AP 0). This
    subclass sets the evaluated category ids to ``dataset_meta[
    'thing_classes']`` (mmdet's panoptic datasets define it) before
    :meth:`CocoMetric.compute_metrics`, so COCOeval (``params.catIds``)
    ignores the stuff annotations. Prediction labels ``0..K_th - 1`` map to
    those ids in order, as mmdet's panoptic label order puts things first.

    Args:
        As :class:`mmdet.evaluation.CocoMetric`.
    """

    def __init__(self,
                 ann_file: Optional[str] = None,
                 *args,
                 **kwargs) -> None:
        super().__init__(ann_file, *args, **kwargs)
        self.ann_file = ann_file  # for messages (CocoMetric keeps no copy)

    def compute_metrics(self, results: list) -> dict:
        if self.cat_ids is None:
            things = (self.dataset_meta or {}).get('thing_classes')
            if not things:
                raise KeyError('ThingsCocoMetric needs dataset_meta['
                               '"thing_classes"] (a panoptic dataset)')
            if self._coco_api is None:
                raise ValueError('ThingsCocoMetric needs ann_file (a '
                                 'COCO-format json of the same images)')
            ids = self._coco_api.get_cat_ids(cat_names=list(things))
            if len(ids) != len(things):
                found = {c['name'] for c in self._coco_api.load_cats(ids)}
                raise ValueError(f'{self.ann_file} lacks thing categories '
                                 f'{sorted(set(things) - found)[:10]}')
            self.cat_ids = ids
        return super().compute_metrics(results)
