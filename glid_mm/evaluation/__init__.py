"""glid_mm evaluation (registered on import)."""
from .lit_text_metric import LiTTextMetric

__all__ = ['LiTTextMetric']
