"""glid_mm heads (registered on import)."""
from .glid_pretrain_head import GLIDPretrainHead
# GLID mask classification (instance / panoptic / semantic fine-tuning)
from .glid_mask_head import GLIDMaskHead
from .glid_mask_predictor import GLIDMaskPredictor
from .glid_mask_seg_head import GLIDMaskSegHead

__all__ = ['GLIDPretrainHead', 'GLIDMaskHead', 'GLIDMaskPredictor',
           'GLIDMaskSegHead']
