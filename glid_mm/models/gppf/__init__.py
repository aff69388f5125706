"""GPPF (General Perception Pre-training Framework) model pieces."""
from .backbone_slot import SharedBackboneSlot
from .cross_task_sync_bn import CrossTaskSyncBN
from .lego_base import BaseLegoBackbone
from .lego_layer import LegoLayer, LegoStem
from .lego_resnet import LegoResNet
from .lego_swin import LegoSwinTransformer
from .multi_task_model import GPPFMultiTaskModel, task_of
from .path_export import (extract_static_backbone, lego_to_resnet_state_dict,
                          lego_to_swin_state_dict, task_path)

__all__ = [
    'BaseLegoBackbone', 'CrossTaskSyncBN', 'GPPFMultiTaskModel', 'LegoLayer',
    'LegoResNet', 'LegoStem', 'LegoSwinTransformer', 'SharedBackboneSlot',
    'extract_static_backbone', 'lego_to_resnet_state_dict',
    'lego_to_swin_state_dict', 'task_path'
]
