"""GPPF's task average in one process (no process group): each used
gradient is its own average (N_p = 1), unused parameters stay None, and
the bucketing keeps every parameter. The two-process rule
``(1 / N_p) sum_i g_i[p]`` is checked in
``tests/engine/model_wrappers/test_gppf_simt_wrapper.py``
(``tests/glid_test_helpers/simt_workers.py``)."""
import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from glid_mm.engine.model_wrappers.gppf_task_average import (
    _buckets, task_average_buffers, task_average_gradients)


@pytest.fixture(autouse=True)
def no_process_group():
    assert not (dist.is_available() and dist.is_initialized())


def _params():
    ps = [nn.Parameter(torch.zeros(n)) for n in (3, 2, 4, 1)]
    ps[0].grad = torch.tensor([1., 2., 3.])
    ps[2].grad = torch.tensor([0., 0., 0., 0.])  # used, zero gradient
    ps[3].grad = torch.tensor([-5.])
    return ps  # ps[1] unused


@pytest.mark.parametrize('bucket_size_mb', [25, 1e-6])
def test_one_process_keeps_used_gradients(bucket_size_mb):
    ps = _params()
    before = [None if p.grad is None else p.grad.clone() for p in ps]
    grad_objects = [p.grad for p in ps]
    counts = task_average_gradients(ps, bucket_size_mb=bucket_size_mb)
    assert counts.tolist() == [1., 0., 1., 1.]
    assert counts.dtype == torch.float32
    for p, b, obj in zip(ps, before, grad_objects):
        if b is None:
            assert p.grad is None
        else:
            assert torch.equal(p.grad, b)
            assert p.grad is obj  # copied in place (optimizer state safe)


def test_parameters_without_requires_grad_are_left_out():
    ps = _params()
    frozen = nn.Parameter(torch.ones(2), requires_grad=False)
    counts = task_average_gradients([ps[0], frozen, ps[1]])
    assert counts.tolist() == [1., 0.]
    assert frozen.grad is None


def test_no_parameters():
    counts = task_average_gradients([])
    assert counts.shape == (0, )
    frozen = nn.Parameter(torch.ones(2), requires_grad=False)
    assert task_average_gradients([frozen]).shape == (0, )


def test_model_gradients_after_backward_unchanged():
    torch.manual_seed(0)
    model = nn.ModuleDict(dict(a=nn.Linear(3, 2), b=nn.Linear(3, 2)))
    model['a'](torch.randn(4, 3)).sum().backward()  # b not used
    grads = {
        k: None if p.grad is None else p.grad.clone()
        for k, p in model.named_parameters()
    }
    counts = task_average_gradients(model.parameters())
    assert counts.tolist() == [1., 1., 0., 0.]
    for k, p in model.named_parameters():
        if grads[k] is None:
            assert p.grad is None, k
        else:
            assert torch.equal(p.grad, grads[k]), k


def test_mixed_dtypes():
    a = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    b = nn.Parameter(torch.zeros(2))
    a.grad = torch.tensor([1., 2.], dtype=torch.float64)
    b.grad = torch.tensor([3., 4.])
    counts = task_average_gradients([a, b, a.new_zeros(1).requires_grad_()])
    assert counts.tolist() == [1., 1., 0.]
    assert a.grad.dtype == torch.float64 and a.grad.tolist() == [1., 2.]
    assert b.grad.tolist() == [3., 4.]


def test_buckets_split_by_size_and_dtype():
    f = [nn.Parameter(torch.zeros(n)) for n in (2, 2, 3)]  # 8, 8, 12 bytes
    d = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    sizes = [[p.numel() for p in b] for b in _buckets(f, 16)]
    assert sizes == [[2, 2], [3]]
    sizes = [[p.numel() for p in b] for b in _buckets(f, 1)]
    assert sizes == [[2], [2], [3]]  # a parameter larger than the bucket
    buckets = list(_buckets([f[0], d, f[1]], 1 << 20))
    assert [[p.dtype for p in b] for b in buckets] == [[torch.float32],
                                                       [torch.float64],
                                                       [torch.float32]]
    assert list(_buckets([], 16)) == []


def _bn(seed):
    torch.manual_seed(seed)
    bn = nn.BatchNorm1d(3)
    bn.train()
    return bn


def test_buffers_one_process():
    """Each layer that ran keeps its running statistics (its own average),
    a layer that did not run keeps its value; counts are 1 / 0."""
    ran, idle = _bn(0), _bn(1)
    before = [m.num_batches_tracked.clone() for m in (ran, idle)]
    ran(torch.randn(5, 3) * 2 + 1)
    ran(torch.randn(5, 3) * 2 + 1)
    state = {k: v.clone() for k, v in ran.state_dict().items()}
    idle_state = {k: v.clone() for k, v in idle.state_dict().items()}
    assert not torch.equal(state['running_mean'], torch.zeros(3))
    counts = task_average_buffers([ran, idle], before)
    assert counts.tolist() == [1., 0.]
    for k, v in ran.state_dict().items():
        torch.testing.assert_close(v, state[k])
    assert int(ran.num_batches_tracked) == 2
    for k, v in idle.state_dict().items():
        assert torch.equal(v, idle_state[k])


def test_buffers_no_modules():
    assert task_average_buffers([], []).shape == (0, )
