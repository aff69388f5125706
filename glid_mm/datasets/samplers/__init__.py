"""LiT decoder's task samplers (registered on import)."""
from glid_mm.datasets.samplers.lit_task_batch_sampler import \
    LiTTaskBatchSampler
from glid_mm.datasets.samplers.lit_task_sampler import LiTTaskMixSampler

__all__ = ['LiTTaskBatchSampler', 'LiTTaskMixSampler']
