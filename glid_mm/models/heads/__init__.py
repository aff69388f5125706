"""glid_mm heads (registered on import)."""
from .glid_pretrain_head import GLIDPretrainHead
# GLID mask classification (instance / panoptic / semantic fine-tuning)
from .glid_mask_head import GLIDMaskHead
from .glid_mask_predictor import GLIDMaskPredictor
from .glid_mask_seg_head import GLIDMaskSegHead
# GLID depth (bins) and pose (heatmap) fine-tuning
from .glid_depth_head import GLIDDepthHead
from .glid_pose_head import GLIDPoseHead
# GLID detection (DETR-style, H-DETR hybrid matching)
from .glid_detr_head import GLIDDETRHead

__all__ = ['GLIDPretrainHead', 'GLIDMaskHead', 'GLIDMaskPredictor',
           'GLIDMaskSegHead', 'GLIDDepthHead', 'GLIDPoseHead',
           'GLIDDETRHead']
