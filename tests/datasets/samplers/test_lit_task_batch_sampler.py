"""LiTTaskBatchSampler: single-task batches yielded as buckets fill.

tests/datasets/samplers/test_lit_task_sampler.py covers the batch counts
over LiTTaskMixSampler, the single task of each batch, drop_last counts and
the batch_size=0 / no-task_of errors; here: the streaming order, leftovers,
``__len__`` == the batches yielded over a grid of sizes, the registry and
DataLoader route of mmengine's runner, and epoch reshuffles reaching the
wrapped sampler.
"""
import types

import pytest
from mmengine.hooks import DistSamplerSeedHook
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import DataLoader

from glid_mm.datasets import LiTTaskBatchSampler, LiTTaskMixSampler


class _Tasks:
    """Task by tens: A at 0-6, B at 10-13, C at 20-21 (one image each)."""

    task_ranges = dict(A=(0, 7), B=(10, 14), C=(20, 22))

    def image_keys(self, task):
        start, end = self.task_ranges[task]
        return [f'{task}{i}' for i in range(end - start)]

    def task_of(self, idx):
        return 'ABC'[idx // 10]

    def __len__(self):
        return 30

    def __getitem__(self, idx):
        return idx


class _ListSampler:
    """A fixed index order over ``_Tasks``."""

    def __init__(self, order, dataset=None):
        self.order = list(order)
        self.dataset = dataset if dataset is not None else _Tasks()

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)


def test_a_batch_is_yielded_as_soon_as_its_bucket_fills():
    # A B A C B A B A C B
    order = [0, 10, 1, 20, 11, 2, 12, 3, 21, 13]
    batches = list(LiTTaskBatchSampler(_ListSampler(order), batch_size=2))
    # full buckets in the order they fill, then leftovers (A: 1 left)
    assert batches == [[0, 1], [10, 11], [2, 3], [20, 21], [12, 13]]


def test_leftovers_follow_in_first_seen_task_order():
    order = [20, 10, 0, 1, 2, 11, 21, 22]  # C B A A A B C C
    bs = LiTTaskBatchSampler(_ListSampler(order), batch_size=3)
    assert list(bs) == [[0, 1, 2], [20, 21, 22], [10, 11]]
    assert len(bs) == 3
    drop = LiTTaskBatchSampler(_ListSampler(order), 3, drop_last=True)
    assert list(drop) == [[0, 1, 2], [20, 21, 22]]
    assert len(drop) == 2


def test_yielded_batches_are_not_reused_buffers():
    bs = LiTTaskBatchSampler(_ListSampler([0, 1, 2, 3, 4]), batch_size=2)
    it = iter(bs)
    first = next(it)
    second = next(it)
    assert first == [0, 1] and second == [2, 3]
    assert first is not second
    assert list(it) == [[4]]
    assert first == [0, 1]  # later batches did not overwrite it


def test_batch_size_one_keeps_the_sampler_order():
    order = [3, 12, 20, 0, 11]
    bs = LiTTaskBatchSampler(_ListSampler(order), batch_size=1)
    assert list(bs) == [[i] for i in order]
    assert len(bs) == len(order)


@pytest.mark.parametrize('drop_last, expected', [(False, 3), (True, 0)])
def test_batch_larger_than_every_task(drop_last, expected):
    order = [0, 1, 10, 20, 21, 22]
    bs = LiTTaskBatchSampler(_ListSampler(order), 8, drop_last=drop_last)
    batches = list(bs)
    assert len(batches) == len(bs) == expected
    if not drop_last:
        assert batches == [[0, 1], [10], [20, 21, 22]]


def test_empty_sampler_gives_no_batch():
    bs = LiTTaskBatchSampler(_ListSampler([]), batch_size=2)
    assert list(bs) == [] and len(bs) == 0


@pytest.mark.parametrize('strategy', ['concat_images', 'equal'])
@pytest.mark.parametrize('batch_size', [1, 2, 3, 5, 13])
@pytest.mark.parametrize('drop_last', [False, True])
def test_len_equals_the_batches_yielded(strategy, batch_size, drop_last):
    ds = _Tasks()
    mix = LiTTaskMixSampler(ds, strategy=strategy, seed=1)
    bs = LiTTaskBatchSampler(mix, batch_size, drop_last=drop_last)
    batches = list(bs)
    assert len(bs) == len(batches)
    assert all(len({ds.task_of(i) for i in b}) == 1 for b in batches)
    assert all(len(b) == batch_size for b in batches) or not drop_last
    assert all(0 < len(b) <= batch_size for b in batches)
    if not drop_last:  # every index of the epoch, once
        assert sorted(sum(batches, [])) == sorted(mix)


def test_built_by_the_registry_as_the_runner_does():
    """mmengine's Runner.build_dataloader: ``batch_sampler`` config built
    with the sampler and the loader's batch_size as default args."""
    mix = LiTTaskMixSampler(_Tasks(), seed=0)
    bs = DATA_SAMPLERS.build(
        dict(type='LiTTaskBatchSampler', drop_last=True),
        default_args=dict(sampler=mix, batch_size=3))
    assert isinstance(bs, LiTTaskBatchSampler)
    assert bs.sampler is mix and bs.dataset is mix.dataset
    assert bs.batch_size == 3 and bs.drop_last is True
    loader = DataLoader(
        mix.dataset, batch_sampler=bs, collate_fn=lambda items: items)
    assert len(loader) == len(bs) == 2 + 1 + 0  # A 7, B 4, C 2 images
    assert list(loader) == list(bs)


def test_epoch_set_by_mmengine_reaches_the_wrapped_sampler():
    """DistSamplerSeedHook finds the mix sampler under
    ``dataloader.batch_sampler.sampler`` (the DataLoader's own ``sampler``
    is a SequentialSampler without set_epoch)."""
    mix = LiTTaskMixSampler(_Tasks(), seed=0)
    loader = DataLoader(
        mix.dataset,
        batch_sampler=LiTTaskBatchSampler(mix, 2),
        collate_fn=lambda items: items)
    first = list(loader)
    runner = types.SimpleNamespace(
        epoch=1, train_loop=types.SimpleNamespace(dataloader=loader))
    DistSamplerSeedHook().before_train_epoch(runner)
    assert mix.epoch == 1
    second = list(loader)
    assert second != first  # reshuffled
    assert sorted(sum(second, [])) == sorted(sum(first, []))
    assert list(loader) == second  # deterministic per epoch


@pytest.mark.parametrize('batch_size', [0, -2, 2.0, '2', None])
def test_batch_size_must_be_a_positive_int(batch_size):
    with pytest.raises(ValueError, match='batch_size must be an int >= 1'):
        LiTTaskBatchSampler(_ListSampler([0]), batch_size=batch_size)


def test_sampler_dataset_without_task_of():
    with pytest.raises(
            TypeError, match=r'needs a sampler whose dataset has '
            r'task_of\(\)'):
        LiTTaskBatchSampler(_ListSampler([0], dataset=[1, 2]), 2)
    no_dataset = types.SimpleNamespace(__iter__=lambda: iter([0]))
    with pytest.raises(TypeError, match='LiTMultiTaskDataset'):
        LiTTaskBatchSampler(no_dataset, 2)
