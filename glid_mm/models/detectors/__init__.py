"""glid_mm mmdet detectors (registered on import)."""
from glid_mm.models.detectors.glid_detr import GLIDDETR
from glid_mm.models.detectors.glid_maskformer import GLIDMaskFormer
from glid_mm.models.detectors.glid_multitask_maskformer import \
    GLIDMultiTaskMaskFormer

__all__ = ['GLIDDETR', 'GLIDMaskFormer', 'GLIDMultiTaskMaskFormer']
