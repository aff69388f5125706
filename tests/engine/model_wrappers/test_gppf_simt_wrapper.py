"""SIMT on 2 CPU processes (gloo): task-averaged gradients and SyncBN.

Process 0 runs task ``a`` on ``[2, 3, 8, 8]`` images, process 1 task ``b``
on ``[3, 3, 12, 12]`` images, in the same iteration, through
``SIMTDistributedWrapper.train_step`` with SGD (lr 1, no momentum), so the
step is ``p <- p - g_avg``. A single-process reference computes both tasks
with BatchNorm statistics over both inputs (what CrossTaskSyncBN computes)
and the rule of GPPF Sec. 3.2, ``g_avg[p] = (1 / N_p) * sum_i g_i[p]``:
shared parameters get half of ``d(L_a + L_b)/dp``, each head the full
gradient of its own loss (used by 1 of 2 processes: not half of it), and
the head nobody used keeps ``grad = None`` and its value.
"""
import os

import pytest
import torch
import torch.nn.functional as F

from glid_test_helpers.dist import spawn
from glid_test_helpers.simt_workers import (TASK_OF_RANK, batch, buffer_worker,
                                            head_loss, lego_cp_worker,
                                            lego_worker, make_model, worker)

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores


def spawn_and_load(tmp_path_factory, fn, stem, weights_only=True):
    """Run ``fn`` on 2 processes; load what each saved as
    ``<stem><rank>.pth``."""
    out_dir = str(tmp_path_factory.mktemp(stem))
    spawn(fn, (out_dir, ))
    return [
        torch.load(
            os.path.join(out_dir, f'{stem}{r}.pth'), weights_only=weights_only)
        for r in range(2)
    ]


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    return spawn_and_load(tmp_path_factory, worker, 'rank')


def reference():
    """Single process: joint BN statistics, then GPPF's task average."""
    import glid_mm  # noqa: F401
    torch.manual_seed(0)  # rank 0's initial weights (broadcast)
    model = make_model()
    init = {k: v.detach().clone() for k, v in model.named_parameters()}
    xs = {t: batch(t)['inputs'] for t in TASK_OF_RANK}
    ys = {t: model.conv(x) for t, x in xs.items()}
    flat = torch.cat([y.transpose(0, 1).flatten(1) for y in ys.values()], 1)
    mean, var = flat.mean(1), flat.var(1, unbiased=False)
    total = 0
    for t, y in ys.items():
        feats = (y - mean[:, None, None]) / torch.sqrt(var[:, None, None] +
                                                       model.bn.eps)
        feats = F.relu(feats * model.bn.weight[:, None, None] +
                       model.bn.bias[:, None, None])
        total = total + head_loss(model.heads, t, feats)
    total.backward()
    grads = {}
    for k, p in model.named_parameters():
        users = 2 if not k.startswith('heads.') else int(
            k.split('.')[1] in TASK_OF_RANK)
        grads[k] = None if users == 0 else p.grad / users
    n = flat.shape[1]
    stats = dict(
        joint_mean=0.1 * mean.detach(),
        joint_var=0.9 + 0.1 * var.detach() * n / (n - 1),
        local_mean=[0.1 * y.detach().mean((0, 2, 3)) for y in ys.values()])
    return init, grads, stats


def test_gradients_follow_gppf_task_average(results):
    init, grads, _ = reference()
    for rank, result in enumerate(results):
        for k, expected in grads.items():
            got = result['grads'][k]
            if expected is None:
                assert got is None, (rank, k)
                torch.testing.assert_close(result['params'][k], init[k])
            else:
                torch.testing.assert_close(got, expected, msg=k)
                torch.testing.assert_close(result['params'][k],
                                           init[k] - expected)
    # head a: used by rank 0 only, gets its full gradient on both ranks
    assert results[1]['grads']['heads.a.weight'] is not None
    assert grads['heads.a.weight'].abs().sum() > 0


def test_rule_on_hand_made_gradients(results):
    for result in results:
        assert result['rule'] == [[2.0, 2.0], [5.0, 5.0], [7.0, 7.0], None]
        assert result['counts'] == [2.0, 1.0, 1.0, 0.0]


def test_batchnorm_statistics_are_cross_task(results):
    _, _, stats = reference()
    b0, b1 = results[0]['buffers'], results[1]['buffers']
    for key in ('bn.running_mean', 'bn.running_var'):
        torch.testing.assert_close(b0[key], b1[key])
    torch.testing.assert_close(b0['bn.running_mean'], stats['joint_mean'])
    torch.testing.assert_close(b0['bn.running_var'], stats['joint_var'])
    for local in stats['local_mean']:  # not what per-process BN gives
        assert (b0['bn.running_mean'] - local).abs().max() > 1e-3


@pytest.fixture(scope='module')
def lego_results(tmp_path_factory):
    return spawn_and_load(tmp_path_factory, lego_worker, 'lego')


@pytest.mark.parametrize('mode', ['hard', 'fixed'])
def test_lego_units_stay_aligned_across_processes(lego_results, mode):
    """Processes on different units still run every unit's SyncBN in the
    same order: all running statistics agree (a unit skipped on one process
    would pair its all-reduce with another unit's), while only the units a
    process selected receive gradients there."""
    r0, r1 = lego_results[0][mode], lego_results[1][mode]
    for key, value in r0['buffers'].items():
        if key.endswith('running_mean'):
            torch.testing.assert_close(value, r1['buffers'][key], msg=key)
            assert value.abs().sum() > 0, key  # every unit ran
    for used in (r0['used'], r1['used']):
        units = [v for k, v in used.items() if '.units.' in k]
        assert any(units) and not all(units)
    if mode == 'fixed':  # path of task a = units 0, of task b = units 1
        for rank, used in enumerate((r0['used'], r1['used'])):
            assert all(v == (f'.units.{rank}.' in k) for k, v in used.items()
                       if '.units.' in k)


@pytest.fixture(scope='module')
def lego_cp_results(tmp_path_factory):
    # keyed by (mode, with_cp) tuples: not a weights-only structure
    return spawn_and_load(
        tmp_path_factory, lego_cp_worker, 'lego_cp', weights_only=False)


@pytest.mark.parametrize('mode', ['soft', 'hard', 'fixed'])
def test_checkpointing_keeps_gradients_and_running_stats(
        lego_cp_results, mode):
    """GPPF App. D.1 checkpoints the units: with ``with_cp=True`` every
    gradient and every running statistic equals the run without it, on
    both processes, although the processes select different units (a
    recomputation that all-reduced again would pair different units'
    statistics, and update running statistics twice)."""
    for rank, result in enumerate(lego_cp_results):
        plain, cp = result[(mode, False)], result[(mode, True)]
        for key, value in plain['buffers'].items():
            torch.testing.assert_close(
                cp['buffers'][key], value, msg=f'rank {rank} {key}')
        n_grads = 0
        for key, grad in plain['grads'].items():
            if grad is None:
                assert cp['grads'][key] is None, (rank, key)
                continue
            n_grads += 1
            torch.testing.assert_close(
                cp['grads'][key], grad, msg=f'rank {rank} {key}')
        assert n_grads > 0
        tracked = [
            v for k, v in cp['buffers'].items()
            if k.endswith('num_batches_tracked')
        ]
        assert tracked and all(int(t) == 1 for t in tracked)


@pytest.fixture(scope='module')
def buffer_results(tmp_path_factory):
    return spawn_and_load(tmp_path_factory, buffer_worker, 'buffers')


def test_task_head_bn_statistics_are_averaged_over_users(buffer_results):
    """After a SIMT step both processes hold the same running statistics
    (what rank 0 checkpoints): the shared plain BN averages both
    processes' updates, head a's BN takes rank 0's update (its only user),
    head b's rank 1's, head c (nobody) keeps its initial value."""
    r0, r1 = buffer_results
    for key, value in r0['buffers'].items():
        torch.testing.assert_close(value, r1['buffers'][key], msg=key)
    for stat in ('running_mean', 'running_var'):
        shared = f'shared.{stat}'
        torch.testing.assert_close(
            r0['buffers'][shared],
            (r0['local'][shared] + r1['local'][shared]) / 2)
        assert (r0['local'][shared] - r1['local'][shared]).abs().max() > 0.1
        torch.testing.assert_close(r0['buffers'][f'heads.a.{stat}'],
                                   r0['local'][f'heads.a.{stat}'])
        torch.testing.assert_close(r0['buffers'][f'heads.b.{stat}'],
                                   r1['local'][f'heads.b.{stat}'])
    torch.testing.assert_close(r0['buffers']['heads.c.running_mean'],
                               torch.zeros(3))
    assert int(r0['buffers']['heads.c.num_batches_tracked']) == 0
    assert int(r0['buffers']['heads.a.num_batches_tracked']) == 1
