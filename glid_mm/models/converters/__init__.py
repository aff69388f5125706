"""Checkpoint converters (state dict in, state dict out), behind
``tools/model_converters/`` and ``tools/gppf_extract_backbone.py``."""
from glid_mm.models.converters.glid_pretrain_to_finetune import \
    convert_pretrain_to_finetune
from glid_mm.models.converters.gppf_path_export import (
    extract_static_backbone, lego_to_resnet_state_dict,
    lego_to_swin_state_dict, resnet_to_lego_state_dict, task_path)
from glid_mm.models.converters.m3i_to_backbone import m3i_to_backbone
from glid_mm.models.converters.multi_task_split import (multi_task_names,
                                                        split_multi_task)

__all__ = [
    'convert_pretrain_to_finetune', 'extract_static_backbone',
    'lego_to_resnet_state_dict', 'lego_to_swin_state_dict', 'm3i_to_backbone',
    'multi_task_names', 'resnet_to_lego_state_dict', 'split_multi_task',
    'task_path'
]
