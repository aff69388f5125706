"""Task mixing strategies of Sec. 5.3 as a data sampler.

The strategies and their epochs, as the paper defines them:

* ``'concat_images'`` (the paper's default): every image of every task once
  per epoch ("each dataset is used for the same number of epochs"); a task
  with several questions per image draws one of them. Epoch = the number
  of (task, image) pairs.
* ``'equal'``: every task gets the same number of examples, "and match the
  total training time of *Concat images*": epoch = *Concat images*' epoch.
* ``'concat_pairs'`` (*concat image-question pairs*): "each image-question
  pair is treated as one example" (OCR-VQA, 4.8 questions per image, "is
  visited 4.8 times more often"): every example once per epoch. Epoch =
  the number of examples.
* ``'concat_unique_images'``: "like *Concat images* except that images are
  de-duplicated, meaning that, for example, the three MS COCO tasks are
  seen three times fewer": an image shared by ``m`` tasks counts ``1/m``
  for each. Epoch = the number of distinct images. Images are identified
  by their content (SHA-1 of the file's bytes), so the same picture stored
  under two paths counts once; ``dedup='path'`` trusts paths instead
  (cheaper: no file is read).

``epoch_size='concat_images'`` gives every strategy *Concat images*' epoch
instead, for comparisons at equal compute per epoch.

Within a task, units (images or pairs) are drawn without replacement,
re-shuffled whenever a task's units run out. Tasks end up mixed within each
batch; wrap the sampler in :class:`LiTTaskBatchSampler` to alternate tasks
across batches instead.
"""
import hashlib
import math
import os.path as osp
from collections import Counter, OrderedDict
from typing import Dict, Iterator, List, Optional

import torch
from mmengine import fileio
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

STRATEGIES = ('concat_images', 'equal', 'concat_pairs', 'concat_unique_images')


@DATA_SAMPLERS.register_module()
class LiTTaskMixSampler(Sampler):
    """Multi-task sampler with the mixing strategies of Sec. 5.3.

    Args:
        dataset (LiTMultiTaskDataset): Needs ``task_ranges`` and
            ``image_keys(task)``.
        strategy (str): One of ``'concat_images'``, ``'equal'``,
            ``'concat_pairs'``, ``'concat_unique_images'``. Defaults to
            ``'concat_images'``.
        shuffle (bool): Shuffle tasks together (True) or yield task by task.
        seed (int, optional): Same on all ranks; random and synced if None.
        round_up (bool): Pad so every rank gets the same count (as
            mmengine's ``DefaultSampler``). Defaults to True.
        epoch_size (str): ``'strategy'`` (each strategy's own epoch, see
            the module docstring) or ``'concat_images'`` (every strategy
            at *Concat images*' length). Defaults to ``'strategy'``.
        dedup (str): How ``'concat_unique_images'`` finds the same image
            in several tasks: ``'content'`` (file bytes) or ``'path'``.
            Defaults to ``'content'``.
    """

    def __init__(self,
                 dataset,
                 strategy: str = 'concat_images',
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True,
                 epoch_size: str = 'strategy',
                 dedup: str = 'content') -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f'strategy={strategy!r} is not one of '
                             f'{STRATEGIES}')
        if epoch_size not in ('strategy', 'concat_images'):
            raise ValueError("epoch_size must be 'strategy' or "
                             f"'concat_images', got {epoch_size!r}")
        if dedup not in ('content', 'path'):
            raise ValueError("dedup must be 'content' or 'path', got "
                             f'{dedup!r}')
        if not hasattr(dataset, 'task_ranges') or not hasattr(
                dataset, 'image_keys'):
            raise TypeError('LiTTaskMixSampler needs a LiTMultiTaskDataset, '
                            f'got {type(dataset).__name__}')
        self.dataset = dataset
        self.strategy = strategy
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.round_up = round_up
        self.rank, self.world_size = get_dist_info()
        self.epoch = 0
        # images: {task: [[global indices of one image], ...]}
        self.images: Dict[str, List[List[int]]] = OrderedDict()
        keys: Dict[str, List[str]] = {}
        owners = Counter()
        identify = self._content_key if (
            strategy == 'concat_unique_images' and dedup == 'content') \
            else None
        for task, (start, _) in dataset.task_ranges.items():
            groups: Dict[str, List[int]] = OrderedDict()
            for i, key in enumerate(dataset.image_keys(task)):
                groups.setdefault(osp.normpath(osp.abspath(key)),
                                  []).append(start + i)
            self.images[task] = list(groups.values())
            ids = [identify(k) for k in groups] if identify else list(groups)
            owners.update(set(ids))
            keys[task] = ids
        # images shared by m tasks count 1/m per task (concat unique images)
        self.unique_share = {
            t: sum(1. / owners[k] for k in set(ks))
            for t, ks in keys.items()
        }
        concat_images = sum(len(g) for g in self.images.values())
        if epoch_size == 'concat_images' or strategy in ('concat_images',
                                                         'equal'):
            self.epoch_size = concat_images
        elif strategy == 'concat_pairs':
            self.epoch_size = sum(
                len(g) for groups in self.images.values() for g in groups)
        else:
            self.epoch_size = len(owners)
        self.task_counts = self._task_counts()

    @staticmethod
    def _content_key(path: str) -> str:
        """SHA-1 of the image file's bytes (any mmengine file backend)."""
        return hashlib.sha1(fileio.get(path)).hexdigest()

    def _task_counts(self) -> Dict[str, int]:
        """Examples per task in one epoch (largest-remainder rounding)."""
        tasks = list(self.images)
        if self.strategy == 'concat_images':
            return {t: len(self.images[t]) for t in tasks}
        if self.strategy == 'equal':
            weights = [1.] * len(tasks)
        elif self.strategy == 'concat_pairs':
            weights = [
                float(sum(len(g) for g in self.images[t])) for t in tasks
            ]
        else:
            weights = [self.unique_share[t] for t in tasks]
        total = sum(weights)
        exact = [self.epoch_size * w / total for w in weights]
        counts = [int(math.floor(e)) for e in exact]
        order = sorted(
            range(len(tasks)), key=lambda i: (counts[i] - exact[i], i))
        for i in order[:self.epoch_size - sum(counts)]:
            counts[i] += 1
        return dict(zip(tasks, counts))

    def _epoch_indices(self) -> List[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        by_image = self.strategy in ('concat_images', 'concat_unique_images')
        indices: List[int] = []
        for task, groups in self.images.items():
            units = groups if by_image else [[i] for grp in groups
                                             for i in grp]
            need = self.task_counts[task]
            drawn: List[List[int]] = []
            while len(drawn) < need:
                order = (
                    torch.randperm(len(units), generator=g).tolist()
                    if self.shuffle else range(len(units)))
                drawn += [units[j] for j in order][:need - len(drawn)]
            for unit in drawn:
                pick = (
                    int(torch.randint(len(unit), (1, ), generator=g))
                    if self.shuffle and len(unit) > 1 else 0)
                indices.append(unit[pick])
        if self.shuffle:
            perm = torch.randperm(len(indices), generator=g).tolist()
            indices = [indices[j] for j in perm]
        return indices

    def __iter__(self) -> Iterator[int]:
        indices = self._epoch_indices()
        if self.round_up:
            total = len(self) * self.world_size
            indices = (indices * math.ceil(total / len(indices)))[:total]
        return iter(indices[self.rank::self.world_size])

    def __len__(self) -> int:
        if self.round_up:
            return math.ceil(self.epoch_size / self.world_size)
        return math.ceil((self.epoch_size - self.rank) / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
