"""Backbones: GLID's Swin, GPPF's lego ResNet / Swin (registered on import;
those whose toolbox is missing are skipped)."""
from glid_mm.models.backbones.gppf_backbone_slot import SharedBackboneSlot
from glid_mm.models.backbones.gppf_lego_base import BaseLegoBackbone
from glid_mm.registry import available

__all__ = ['BaseLegoBackbone', 'SharedBackboneSlot']
if available('mmdet'):
    from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet  # noqa
    __all__ += ['LegoResNet']
if available('mmpretrain'):
    from glid_mm.models.backbones.glid_swin import \
        GLIDSwinTransformer  # noqa: F401
    from glid_mm.models.backbones.gppf_lego_swin import \
        LegoSwinTransformer  # noqa: F401
    __all__ += ['GLIDSwinTransformer', 'LegoSwinTransformer']
