"""glid_mm mmdet detectors (registered on import)."""
from .glid_maskformer import GLIDMaskFormer

__all__ = ['GLIDMaskFormer']
