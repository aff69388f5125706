"""Task mixing strategies (Sec. 5.3) and task-alternating batches."""
from collections import Counter

import pytest

from glid_mm.datasets import LiTTaskBatchSampler, LiTTaskMixSampler


class _Tasks:
    """A: 6 images x 3 questions, B: 4 images, C: the same 4 images as B."""

    def __init__(self):
        self.keys = dict(
            A=[f'a{i // 3}' for i in range(18)],
            B=[f'b{i}' for i in range(4)],
            C=[f'b{i}' for i in range(4)])
        self.task_ranges = dict(A=(0, 18), B=(18, 22), C=(22, 26))

    def image_keys(self, task):
        return self.keys[task]

    def task_of(self, idx):
        return next(t for t, (s, e) in self.task_ranges.items()
                    if s <= idx < e)


def _counts(sampler):
    return Counter(sampler.dataset.task_of(i) for i in sampler)


@pytest.mark.parametrize(
    'strategy, expected',
    [
        ('concat_images', dict(A=6, B=4, C=4)),
        ('equal', dict(A=5, B=5, C=4)),  # 14 / 3 each, largest remainder
        ('concat_pairs', dict(A=10, B=2, C=2)),  # 14 * (18, 4, 4) / 26
        ('concat_unique_images', dict(A=8, B=3, C=3)),  # 14 * (6, 2, 2) / 10
    ])
def test_strategy_proportions(strategy, expected):
    s = LiTTaskMixSampler(_Tasks(), strategy=strategy, seed=0)
    assert s.epoch_size == len(s) == 14
    assert s.task_counts == expected
    assert _counts(s) == Counter(expected)


def test_concat_images_visits_each_image_once():
    ds = _Tasks()
    s = LiTTaskMixSampler(ds, seed=1)
    images = [ds.keys['A'][i] for i in s if i < 18]
    assert sorted(images) == [f'a{i}' for i in range(6)]
    s.set_epoch(1)
    again = list(s)
    s.set_epoch(2)
    assert list(s) != again  # reshuffled per epoch
    s.set_epoch(1)
    assert list(s) == again  # deterministic per (seed, epoch)


def test_distributed_shards_cover_epoch():
    ds = _Tasks()
    shards = []
    for rank in range(3):
        s = LiTTaskMixSampler(ds, seed=3)
        s.rank, s.world_size = rank, 3
        shards.append(list(s))
        assert len(shards[-1]) == len(s) == 5
    full = LiTTaskMixSampler(ds, seed=3)._epoch_indices()
    assert sorted(sum(shards, [])) == sorted(full + full[:1])


def test_batches_alternate_tasks():
    ds = _Tasks()
    bs = LiTTaskBatchSampler(LiTTaskMixSampler(ds, seed=0), batch_size=3)
    batches = list(bs)
    assert len(batches) == len(bs) == 2 + 2 + 2  # ceil(6/3), ceil(4/3) x2
    assert all(len({ds.task_of(i) for i in b}) == 1 for b in batches)
    assert sorted(sum(batches, [])) == sorted(LiTTaskMixSampler(ds, seed=0))
    drop = LiTTaskBatchSampler(
        LiTTaskMixSampler(ds, seed=0), 3, drop_last=True)
    assert len(list(drop)) == len(drop) == 2 + 1 + 1


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='strategy'):
        LiTTaskMixSampler(_Tasks(), strategy='random')
    with pytest.raises(TypeError, match='LiTMultiTaskDataset'):
        LiTTaskMixSampler([1, 2, 3])
    with pytest.raises(ValueError, match='batch_size'):
        LiTTaskBatchSampler(LiTTaskMixSampler(_Tasks()), batch_size=0)
    with pytest.raises(TypeError, match='task_of'):
        LiTTaskBatchSampler(range(3), batch_size=2)
