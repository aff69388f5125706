"""Backbones: GLID's Swin, GPPF's lego ResNet / Swin (registered on import)."""
from glid_mm.models.backbones.glid_swin import GLIDSwinTransformer
from glid_mm.models.backbones.gppf_backbone_slot import SharedBackboneSlot
from glid_mm.models.backbones.gppf_lego_base import BaseLegoBackbone
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
from glid_mm.models.backbones.gppf_lego_swin import LegoSwinTransformer

__all__ = [
    'BaseLegoBackbone', 'GLIDSwinTransformer', 'LegoResNet',
    'LegoSwinTransformer', 'SharedBackboneSlot'
]
