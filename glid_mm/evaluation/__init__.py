"""glid_mm evaluation (registered on import)."""
from glid_mm.evaluation.lit_text_metric import LiTTextMetric
from glid_mm.evaluation.glid_multitask_seg_metrics import DetSemSegIoUMetric, ThingsCocoMetric

__all__ = ['DetSemSegIoUMetric', 'LiTTextMetric', 'ThingsCocoMetric']
