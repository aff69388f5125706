"""glid_mm evaluation (registered on import)."""
from .lit_text_metric import LiTTextMetric
from .multitask_seg_metrics import DetSemSegIoUMetric, ThingsCocoMetric

__all__ = ['DetSemSegIoUMetric', 'LiTTextMetric', 'ThingsCocoMetric']
