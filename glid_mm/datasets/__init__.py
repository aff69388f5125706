"""glid_mm datasets, samplers and transforms (registered on import)."""
from glid_mm.datasets import samplers, transforms  # noqa: F401
from glid_mm.datasets.camvid import CamVidDataset
from glid_mm.datasets.lit_camvid_text import LiTCamVidTextDataset
from glid_mm.datasets.lit_coco_text import LiTCocoTextDataset
from glid_mm.datasets.lit_multitask_dataset import LiTMultiTaskDataset
from glid_mm.datasets.samplers import LiTTaskBatchSampler, LiTTaskMixSampler
from glid_mm.datasets.transforms import GLIDMaskGenerator

__all__ = [
    'CamVidDataset', 'GLIDMaskGenerator', 'LiTCamVidTextDataset',
    'LiTCocoTextDataset', 'LiTMultiTaskDataset', 'LiTTaskBatchSampler',
    'LiTTaskMixSampler'
]
