"""Task heads: GLID's pre-training and fine-tuning heads, M3I's attention
pooling head (registered on import; those whose toolbox is missing are
skipped)."""
from glid_mm.models.heads.glid_mask_predictor import GLIDMaskPredictor
from glid_mm.registry import available

__all__ = ['GLIDMaskPredictor']
if available('mmdet'):
    from glid_mm.models.heads.glid_detr_head import GLIDDETRHead  # noqa
    from glid_mm.models.heads.glid_mask_head import GLIDMaskHead  # noqa
    __all__ += ['GLIDDETRHead', 'GLIDMaskHead']
if available('mmdet', 'mmseg'):
    from glid_mm.models.heads.glid_mask_seg_head import \
        GLIDMaskSegHead  # noqa: F401
    __all__ += ['GLIDMaskSegHead']
if available('mmseg'):
    from glid_mm.models.heads.glid_depth_head import GLIDDepthHead  # noqa
    __all__ += ['GLIDDepthHead']
if available('mmpose'):
    from glid_mm.models.heads.glid_pose_head import GLIDPoseHead  # noqa
    __all__ += ['GLIDPoseHead']
if available('mmpretrain'):
    from glid_mm.models.heads.glid_pretrain_head import \
        GLIDPretrainHead  # noqa: F401
    from glid_mm.models.heads.m3i_attention_pool_head import \
        M3IAttentionPoolHead  # noqa: F401
    __all__ += ['GLIDPretrainHead', 'M3IAttentionPoolHead']
