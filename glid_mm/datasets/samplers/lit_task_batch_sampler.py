"""Alternate tasks across batches instead of mixing them (Sec. 5.3).

The paper finds mixing tasks within a batch slightly better, but homogeneous
batches allow per-task sequence lengths or encoders. This batch sampler
buckets the indices of any sampler by task (as mmdet's
``AspectRatioBatchSampler`` buckets by aspect ratio) and yields a batch as
soon as one task's bucket is full, so tasks alternate in proportion to the
sampler's mixing strategy.
"""
import math
from typing import Dict, Iterator, List

from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, Sampler


@DATA_SAMPLERS.register_module()
class LiTTaskBatchSampler(BatchSampler):
    """Single-task batches drawn from ``sampler``.

    Args:
        sampler (Sampler): e.g. :class:`LiTTaskMixSampler`; its ``dataset``
            must have ``task_of(idx)``.
        batch_size (int): Examples per batch.
        drop_last (bool): Drop each task's last incomplete batch. Defaults
            to False.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 drop_last: bool = False) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be an int >= 1, got '
                             f'{batch_size!r}')
        dataset = getattr(sampler, 'dataset', None)
        if not hasattr(dataset, 'task_of'):
            raise TypeError('LiTTaskBatchSampler needs a sampler whose '
                            'dataset has task_of() (LiTMultiTaskDataset)')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.dataset = dataset

    def __iter__(self) -> Iterator[List[int]]:
        buckets: Dict[str, List[int]] = {}
        for idx in self.sampler:
            bucket = buckets.setdefault(self.dataset.task_of(idx), [])
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        if not self.drop_last:
            for bucket in buckets.values():
                if bucket:
                    yield bucket

    def __len__(self) -> int:
        counts: Dict[str, int] = {}
        for idx in self.sampler:
            task = self.dataset.task_of(idx)
            counts[task] = counts.get(task, 0) + 1
        round_ = math.floor if self.drop_last else math.ceil
        return sum(round_(n / self.batch_size) for n in counts.values())
