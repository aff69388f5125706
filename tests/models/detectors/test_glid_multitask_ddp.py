"""GLID multi-task fine-tuning (Sec. 4: task samples "evenly included" in
each batch) on 2 CPU processes (gloo) with DDP, 2 images per process and
3 tasks: the tasks split evenly over the global batch, every task head is
in every process's graph, and the gradients equal one process holding the
global batch of 4; then the nano multi-task config trains 3 iterations
under ``tools/dist_train.sh`` with 2 processes and batch 2 per process.
"""
import os.path as osp

import pytest
import torch

from glid_test_helpers.dist import dist_train, spawn
from glid_test_helpers.mt_ddp_workers import CFG, ITERS, reference, worker
from glid_tools.stack_demo import read_scalars

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores


@pytest.fixture(scope='module')
def ddp_results(tmp_path_factory, project_root, data_root):
    out_dir = str(tmp_path_factory.mktemp('mt_ddp'))
    spawn(worker, (out_dir, project_root, data_root), timeout=400)
    return [
        torch.load(osp.join(out_dir, f'rank{r}.pth'), weights_only=True)
        for r in range(2)
    ], reference(project_root, data_root)


def test_tasks_split_evenly_over_the_global_batch(ddp_results):
    ranks, ref = ddp_results
    tasks = ('semantic', 'instance', 'panoptic')
    for it in range(ITERS):
        global_tasks = ranks[0][it]['tasks'] + ranks[1][it]['tasks']
        assert global_tasks == ref[it]['tasks']
        counts = sorted(global_tasks.count(t) for t in tasks)
        assert counts == [1, 1, 2], global_tasks  # 4 samples, 3 tasks
    # the task with two samples rotates over iterations
    doubles = [
        max(tasks, key=(ranks[0][it]['tasks'] + ranks[1][it]['tasks']).count)
        for it in range(ITERS)
    ]
    assert len(set(doubles)) == ITERS
    # some iteration has a task absent on one process: that head is kept in
    # the graph by a zero term
    assert any('loss_absent_tasks' in r[it]['keys'] for r in ranks
               for it in range(ITERS))


def test_gradients_equal_one_process_with_the_global_batch(ddp_results):
    """Per tensor, ``|g_ddp - g_one| / |g_one|``: float32 rounding of a
    batch of 2 vs 4 moves near-tied Hungarian matches and leaves up to
    about 1% on a few small tensors (the Bi-FPN fusion weights, sums of
    cancelling terms), the median is far below; a per-process
    normalisation (the class loss normalised over each process's queries
    instead of the global batch's) is off by 13-27% on the worst tensors
    (measured when this test was written)."""
    ranks, ref = ddp_results
    for it in range(ITERS):
        expected = ref[it]['grads']
        for rank in range(2):
            got = ranks[rank][it]['grads']
            assert set(got) == set(expected)  # every head, every process
            errors = {
                key:
                float(
                    (got[key] - value).norm() / value.norm().clamp_min(1e-12))
                for key, value in expected.items()
            }
            worst = max(errors, key=errors.get)
            assert errors[worst] < 0.03, (it, rank, worst, errors[worst])
            median = sorted(errors.values())[len(errors) // 2]
            assert median < 1e-3, (it, rank, median)
        heads = [k for k in expected if k.startswith('task_heads.')]
        assert heads and all(expected[k].abs().sum() > 0 for k in heads)


def test_multitask_config_trains_with_dist_train(tmp_path, project_root):
    """The reported failure: 2 gloo processes, batch 2 per process, stopped
    at iteration 2 with DDP's unfinished-reduction error."""
    dist_train(CFG, tmp_path, 'train_cfg.max_iters=3',
               'train_cfg.val_interval=100', 'train_dataloader.batch_size=2',
               'default_hooks.logger.interval=1',
               'default_hooks.checkpoint.interval=3')
    records = read_scalars(str(tmp_path))
    assert [r['iter'] for r in records if 'loss' in r] == [1, 2, 3]
    assert all(
        torch.isfinite(torch.tensor(r['loss'])) for r in records
        if 'loss' in r)
