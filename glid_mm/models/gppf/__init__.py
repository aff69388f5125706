"""GPPF (General Perception Pre-training Framework) model pieces."""
from .backbone_slot import SharedBackboneSlot
from .cross_task_sync_bn import CrossTaskSyncBN
from .lego_layer import LegoLayer, LegoStem
from .lego_resnet import LegoResNet
from .multi_task_model import GPPFMultiTaskModel, task_of
from .path_export import (extract_static_backbone, lego_to_resnet_state_dict,
                          task_path)

__all__ = [
    'CrossTaskSyncBN', 'GPPFMultiTaskModel', 'LegoLayer', 'LegoResNet',
    'LegoStem', 'SharedBackboneSlot', 'extract_static_backbone',
    'lego_to_resnet_state_dict', 'task_of', 'task_path'
]
