"""glid_mm datasets (registered on import)."""
from . import transforms  # noqa: F401  (M3I two-view transform, ...)
from .camvid import CamVidDataset
from .glid_mask_generator import GLIDMaskGenerator
from .lit_camvid_text import LiTCamVidTextDataset
from .lit_coco_text import LiTCocoTextDataset
from .lit_multitask_dataset import LiTMultiTaskDataset
from .lit_task_batch_sampler import LiTTaskBatchSampler
from .lit_task_sampler import LiTTaskMixSampler

__all__ = ['GLIDMaskGenerator', 'CamVidDataset']
__all__ += [
    'LiTCamVidTextDataset', 'LiTCocoTextDataset', 'LiTMultiTaskDataset',
    'LiTTaskBatchSampler', 'LiTTaskMixSampler'
]
