"""Task heads: GLID's pre-training and fine-tuning heads, M3I's attention
pooling head (registered on import)."""
from glid_mm.models.heads.glid_depth_head import GLIDDepthHead
from glid_mm.models.heads.glid_detr_head import GLIDDETRHead
from glid_mm.models.heads.glid_mask_head import GLIDMaskHead
from glid_mm.models.heads.glid_mask_predictor import GLIDMaskPredictor
from glid_mm.models.heads.glid_mask_seg_head import GLIDMaskSegHead
from glid_mm.models.heads.glid_pose_head import GLIDPoseHead
from glid_mm.models.heads.glid_pretrain_head import GLIDPretrainHead
from glid_mm.models.heads.m3i_attention_pool_head import M3IAttentionPoolHead

__all__ = [
    'GLIDDETRHead', 'GLIDDepthHead', 'GLIDMaskHead', 'GLIDMaskPredictor',
    'GLIDMaskSegHead', 'GLIDPoseHead', 'GLIDPretrainHead',
    'M3IAttentionPoolHead'
]
