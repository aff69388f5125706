"""glid_mm evaluation (registered on import; metrics whose toolbox is
missing are skipped)."""
from glid_mm.registry import available

__all__ = []
if available('mmpretrain'):
    from glid_mm.evaluation.lit_text_metric import LiTTextMetric  # noqa
    __all__ += ['LiTTextMetric']
if available('mmdet', 'mmseg'):
    from glid_mm.evaluation.glid_multitask_seg_metrics import (  # noqa
        DetSemSegIoUMetric, ThingsCocoMetric)
    __all__ += ['DetSemSegIoUMetric', 'ThingsCocoMetric']
