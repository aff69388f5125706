"""glid_mm datasets, samplers and transforms (registered on import; those
whose toolbox is missing are skipped)."""
from glid_mm.datasets import samplers, transforms  # noqa: F401
from glid_mm.datasets.lit_coco_text import LiTCocoTextDataset
from glid_mm.datasets.samplers import LiTTaskBatchSampler, LiTTaskMixSampler
from glid_mm.datasets.transforms import GLIDMaskGenerator
from glid_mm.registry import available

__all__ = [
    'GLIDMaskGenerator', 'LiTCocoTextDataset', 'LiTTaskBatchSampler',
    'LiTTaskMixSampler'
]
if available('mmseg'):
    from glid_mm.datasets.camvid import CamVidDataset  # noqa: F401
    from glid_mm.datasets.lit_camvid_text import \
        LiTCamVidTextDataset  # noqa: F401
    __all__ += ['CamVidDataset', 'LiTCamVidTextDataset']
if available('mmpretrain'):
    from glid_mm.datasets.lit_multitask_dataset import \
        LiTMultiTaskDataset  # noqa: F401
    __all__ += ['LiTMultiTaskDataset']
