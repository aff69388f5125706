"""SIMT semantics of the nano GLID generalist on 2 CPU processes (gloo).

Process 0 runs detection (mmdet, GLIDDETRHead), process 1 depth (mmseg,
GLIDDepthHead) in the same iteration, on one shared Swin + Bi-FPN + query
decoder (``tests/glid_test_helpers/generalist.py``). A one-process
reference runs both tasks' losses on the same batches with the same random
draws and applies GPPF Sec. 3.2's rule ``g_avg[p] = (1 / N_p) sum_i
g_i[p]``: a shared parameter gets the mean of the two tasks' gradients,
a head its own task's full gradient (1 user of 2), and the heads nobody
ran (seg, pose) no gradient at all, so AdamW leaves them alone.
"""
import copy

import pytest
import torch

from glid_test_helpers.dist import spawn
from glid_test_helpers.generalist import (TASK_OF_RANK, build, lateral_bns,
                                          resolved_config, seed_for,
                                          shared_bn_eval, simt_worker,
                                          task_batch)

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def setup(tmp_path_factory, data_root):
    resolved = resolved_config()
    batches = {t: task_batch(resolved, t) for t in ('det', 'depth')}
    out_dir = tmp_path_factory.mktemp('generalist_simt')
    torch.save(
        dict(model=resolved['model'], batches=batches), out_dir / 'inputs.pth')
    spawn(simt_worker, (str(out_dir), ), timeout=300)
    results = [
        torch.load(out_dir / f'rank{r}.pth', weights_only=False)
        for r in range(2)
    ]
    return resolved['model'], batches, results


def _task_grads(model, batches, task):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed_for(task))
    data = model.data_preprocessor(copy.deepcopy(batches[task]), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    return {
        k: None if p.grad is None else p.grad.clone()
        for k, p in model.named_parameters()
    }


def test_gradients_follow_the_task_average(setup):
    model_cfg, batches, results = setup
    model = build(model_cfg, seed=0)
    model.train()
    shared_bn_eval(model)
    g = {t: _task_grads(model, batches, t) for t in TASK_OF_RANK}
    checked = dict(shared=0, det=0, depth=0, unused=0)
    for name, _ in model.named_parameters():
        used = [g[t][name] for t in TASK_OF_RANK if g[t][name] is not None]
        expected = sum(used) / len(used) if used else None
        for rank, result in enumerate(results):
            got = result['grads'][0][name]
            if expected is None:
                assert got is None, (rank, name)
            else:
                # float sums in another order (threads, all-reduce): a
                # tolerance on the whole tensor, far below a factor 2
                err = float((got - expected).norm())
                tol = 1e-4 * float(expected.norm()) + 1e-6
                assert err <= tol, (rank, name, err, tol)
        kind = ('unused' if not used else 'shared' if len(used) == 2 else
                'det' if g['det'][name] is not None else 'depth')
        checked[kind] += 1
        if kind == 'shared':
            assert not name.startswith('tasks.'), name
        elif kind in ('det', 'depth'):
            assert name.startswith(f'tasks.{kind}.'), name
    # the Bi-FPN, decoder layers and backbone are shared; both heads got
    # their own gradient; seg and pose heads none
    assert min(checked.values()) > 0, checked
    assert any(results[0]['grads'][0][n] is not None
               for n in results[0]['grads'][0] if n.startswith('neck.'))


def test_unused_heads_are_not_stepped(setup):
    """Iteration 2 runs depth on both processes: the det head (stepped in
    iteration 1) keeps its values and AdamW moments, no weight decay
    applied; the seg and pose heads were never stepped."""
    _, _, results = setup
    for result in results:
        first, second = result['steps']
        init = result['init']
        for name, value in second['params'].items():
            if name.startswith('tasks.det.'):
                assert torch.equal(value, first['params'][name]), name
                step, avg = second['adam'][name]
                assert step == 1.0, name
                assert torch.equal(avg, first['adam'][name][1]), name
            elif name.startswith(('tasks.seg.', 'tasks.pose.')):
                assert torch.equal(value, init[name]), name
                assert name not in second['adam'], name
            elif name.startswith('tasks.depth.') or name.startswith('neck.'):
                assert second['adam'][name][0] == 2.0, name
        moved = [
            n for n in first['params'] if n.startswith('tasks.det.')
            and not torch.equal(first['params'][n], init[n])
        ]
        assert moved  # iteration 1 did step the det head
    # both processes hold the same model after each step
    for a, b in zip(results[0]['steps'], results[1]['steps']):
        for name in a['params']:
            assert torch.equal(a['params'][name], b['params'][name]), name


def test_shared_bifpn_bn_uses_cross_task_statistics(setup):
    """The first Bi-FPN BN layers (after the lateral 1x1 convs) see the
    backbone features of both processes' tasks: their running statistics
    are the joint mean / unbiased variance over both batches' pixels."""
    model_cfg, batches, results = setup
    model = build(model_cfg, seed=0)
    model.train()
    inputs = {}
    bns = lateral_bns(model)
    hooks = [
        bn.register_forward_pre_hook(
            lambda m, args, name=name: inputs.setdefault(name, []).append(args[
                0].detach())) for name, bn in bns.items()
    ]
    with torch.no_grad():
        for task in TASK_OF_RANK:
            torch.manual_seed(seed_for(task))
            data = model.data_preprocessor(copy.deepcopy(batches[task]), True)
            model(**data, mode='loss')
    for h in hooks:
        h.remove()
    for name, bn in bns.items():
        flat = torch.cat([x.transpose(0, 1).flatten(1) for x in inputs[name]],
                         1)
        n, m = flat.shape[1], bn.momentum
        mean = flat.mean(1)
        var = flat.var(1, unbiased=True)
        for result in results:
            got_mean, got_var = result['bn'][name]
            torch.testing.assert_close(
                got_mean,
                m * mean,
                rtol=1e-4,
                atol=1e-6,
                msg=lambda m, n=name: f"{n}: {m}")
            torch.testing.assert_close(
                got_var, (1 - m) + m * var,
                rtol=1e-4,
                atol=1e-6,
                msg=lambda m, n=name: f"{n}: {m}")
        # not what one task's batch alone gives
        own = inputs[name][0].mean((0, 2, 3))
        assert (own - mean).abs().max() > 1e-3, name
        assert n > inputs[name][0][:, 0].numel()


def test_training_step_with_cross_task_bn(setup):
    """With the shared Bi-FPN's BN in training mode (its forward and
    backward all-reduces run while the processes run different tasks),
    the step finishes on both processes with finite losses, the same
    task-averaged gradients and the same BN statistics, and the shared
    gradients differ from those of the eval-mode step (the batch
    statistics, joint over both tasks, enter them)."""
    _, _, results = setup
    a, b = results[0]['bn_train'], results[1]['bn_train']
    assert a['loss'] == a['loss'] and b['loss'] == b['loss']  # not NaN
    assert set(a['grads']) == set(b['grads'])
    for name in a['grads']:
        assert torch.isfinite(a['grads'][name]).all(), name
        torch.testing.assert_close(a['grads'][name], b['grads'][name])
    for name in a['buffers']:
        torch.testing.assert_close(a['buffers'][name], b['buffers'][name])
    name = 'neck.lateral_convs.0.conv.weight'
    eval_mode = results[0]['grads'][0][name]
    assert (a['grads'][name] - eval_mode).abs().max() > 1e-6
    assert any(k.startswith('tasks.det.') for k in a['grads'])
    assert any(k.startswith('tasks.depth.') for k in a['grads'])
