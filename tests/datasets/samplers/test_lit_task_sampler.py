"""Task mixing strategies (Sec. 5.3) and task-alternating batches."""
import os
from collections import Counter

import pytest

from glid_mm.datasets import LiTTaskBatchSampler, LiTTaskMixSampler


class _Tasks:
    """A: 6 images x 3 questions, B: 4 images, C: the same 4 pictures as B
    stored under other paths (copies), when ``root`` is given as files."""

    def __init__(self, root=None):
        self.keys = dict(
            A=[f'a{i // 3}' for i in range(18)],
            B=[f'b{i}' for i in range(4)],
            C=[f'c{i}' for i in range(4)])
        if root is not None:
            for task, keys in self.keys.items():
                for key in set(keys):
                    picture = key.replace('c', 'b')  # C copies B
                    with open(os.path.join(root, key), 'wb') as f:
                        f.write(f'pixels of {picture}'.encode())
            self.keys = {
                t: [os.path.join(root, k) for k in ks]
                for t, ks in self.keys.items()
            }
        self.task_ranges = dict(A=(0, 18), B=(18, 22), C=(22, 26))

    def image_keys(self, task):
        return self.keys[task]

    def task_of(self, idx):
        return next(t for t, (s, e) in self.task_ranges.items()
                    if s <= idx < e)


def _counts(sampler):
    return Counter(sampler.dataset.task_of(i) for i in sampler)


@pytest.mark.parametrize(
    'strategy, size, expected',
    [
        # every (task, image) once: 6 + 4 + 4
        ('concat_images', 14, dict(A=6, B=4, C=4)),
        # Concat images' length, 14 / 3 each (largest remainder)
        ('equal', 14, dict(A=5, B=5, C=4)),
        # every image-question pair once: 18 + 4 + 4
        ('concat_pairs', 26, dict(A=18, B=4, C=4)),
        # every distinct picture once: B and C share theirs (by content)
        ('concat_unique_images', 10, dict(A=6, B=2, C=2)),
    ])
def test_strategy_epochs_follow_the_paper(tmp_path, strategy, size, expected):
    s = LiTTaskMixSampler(_Tasks(str(tmp_path)), strategy=strategy, seed=0)
    assert s.epoch_size == len(s) == size
    assert s.task_counts == expected
    assert _counts(s) == Counter(expected)


@pytest.mark.parametrize(
    'strategy, expected',
    [
        ('concat_images', dict(A=6, B=4, C=4)),
        ('equal', dict(A=5, B=5, C=4)),
        ('concat_pairs', dict(A=10, B=2, C=2)),  # 14 * (18, 4, 4) / 26
        ('concat_unique_images', dict(A=8, B=3, C=3)),  # 14 * (6, 2, 2) / 10
    ])
def test_equal_compute_epochs(tmp_path, strategy, expected):
    s = LiTTaskMixSampler(
        _Tasks(str(tmp_path)),
        strategy=strategy,
        seed=0,
        epoch_size='concat_images')
    assert s.epoch_size == len(s) == 14
    assert s.task_counts == expected


def test_unique_images_by_content_not_path(tmp_path):
    ds = _Tasks(str(tmp_path))
    by_content = LiTTaskMixSampler(ds, 'concat_unique_images', seed=0)
    by_path = LiTTaskMixSampler(
        ds, 'concat_unique_images', seed=0, dedup='path')
    assert by_content.unique_share == dict(A=6., B=2., C=2.)
    assert by_path.unique_share == dict(A=6., B=4., C=4.)
    assert by_path.epoch_size == 14
    with open(ds.keys['C'][0], 'wb') as f:  # one copy edited
        f.write(b'other pixels')
    edited = LiTTaskMixSampler(ds, 'concat_unique_images', seed=0)
    assert edited.epoch_size == 11
    assert edited.unique_share == dict(A=6., B=2.5, C=2.5)


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
    with pytest.raises(ValueError, match='epoch_size'):
        LiTTaskMixSampler(_Tasks(), epoch_size='long')
    with pytest.raises(ValueError, match='dedup'):
        LiTTaskMixSampler(_Tasks(), dedup='pixels')
    with pytest.raises(TypeError, match='LiTMultiTaskDataset'):
        LiTTaskMixSampler([1, 2, 3])
    with pytest.raises(ValueError, match='batch_size'):
        LiTTaskBatchSampler(LiTTaskMixSampler(_Tasks()), batch_size=0)
    with pytest.raises(TypeError, match='task_of'):
        LiTTaskBatchSampler(range(3), batch_size=2)
