"""GPPF's task-averaged gradient: each gradient averaged over its users.

GPPF Sec. 3.2 (SIMT): "To fuse the gradients of each learnable parameter
``p`` on different GPUs, we use a task average computed by
``(1 / N_p) * sum_{i=1}^{N_p} g_i[p]``, where ``N_p`` is the number of GPUs
that use parameter ``p``." DDP instead divides every sum by the world size
(a parameter used by 1 of 8 processes gets 1/8 of its gradient), and
UniHCP-style zero filling counts the zeros in the average (see
``/work/shared/REFERENCES.md``); neither is the paper's rule.

"Used" means the parameter received a gradient in this process's backward
(``p.grad is not None``; mmengine's ``zero_grad`` sets gradients to None).
A parameter in the graph whose gradient happens to be zero still counts as
used, as it should.
"""
from typing import Iterable, List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def _buckets(params: List[nn.Parameter], bucket_bytes: int):
    bucket, size = [], 0
    for p in params:
        if bucket and (size + p.numel() * p.element_size() > bucket_bytes
                       or p.dtype != bucket[0].dtype
                       or p.device != bucket[0].device):
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += p.numel() * p.element_size()
    if bucket:
        yield bucket


@torch.no_grad()
def task_average_gradients(params: Iterable[nn.Parameter],
                           group: Optional[object] = None,
                           bucket_size_mb: float = 25) -> torch.Tensor:
    """Replace each ``p.grad`` by ``(1 / N_p) * sum_i g_i[p]`` over processes.

    Every process must call this with the same parameters in the same order
    (the same model). Two collectives per bucket: an ``all_reduce`` of the
    per-parameter "used" flags (one float each) and one of the flattened
    gradients, where a process that did not use ``p`` contributes zeros
    that do not count in ``N_p``.

    Args:
        params (Iterable[nn.Parameter]): Parameters with
            ``requires_grad=True``.
        group (ProcessGroup, optional): Defaults to all processes.
        bucket_size_mb (float): Gradient bucket size. Defaults to 25.

    Returns:
        Tensor: ``[P]`` float, ``N_p`` per parameter (after the reduction).
        Parameters no process used keep ``grad = None`` (the optimizer skips
        them); parameters used elsewhere but not here receive the average.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        return torch.zeros(0)
    device = params[0].device
    used = torch.tensor([float(p.grad is not None) for p in params],
                        device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(used, group=group)
    counts = used.cpu().tolist()
    index = {id(p): i for i, p in enumerate(params)}
    for bucket in _buckets(params, int(bucket_size_mb * 2**20)):
        active = [p for p in bucket if counts[index[id(p)]] > 0]
        if not active:
            continue
        grads = [
            p.grad if p.grad is not None else torch.zeros_like(p)
            for p in active
        ]
        flat = _flatten_dense_tensors(grads)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flat, group=group)
        for p, g in zip(active, _unflatten_dense_tensors(flat, grads)):
            g = g / counts[index[id(p)]]
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
    return used.cpu()


@torch.no_grad()
def task_average_buffers(modules: Iterable[nn.Module],
                         tracked_before: List[torch.Tensor],
                         group: Optional[object] = None) -> torch.Tensor:
    """Running statistics of per-task BatchNorm layers, averaged over the
    processes that ran them in this step (the buffer counterpart of
    :func:`task_average_gradients`).

    Under SIMT a task head's plain BatchNorm updates its running statistics
    only on the processes that ran the task this iteration, so the copies
    drift apart and the checkpoint (written by rank 0) holds rank 0's copy,
    which saw only the iterations rank 0 happened to run the task. As the
    gradient of a parameter is averaged over its users (GPPF Sec. 3.2), a
    layer's running mean and variance are averaged over the processes that
    updated them; every process then holds that average (as DDP's
    ``broadcast_buffers`` keeps replicas equal). Since each user started
    from the same running value, the average is the running statistic of
    the users' averaged batch statistics. A layer no process ran keeps its
    value.

    Args:
        modules (Iterable[nn.Module]): The BatchNorm layers (same list, same
            order on every process), with ``track_running_stats``.
        tracked_before (list[Tensor]): Each layer's ``num_batches_tracked``
            before the step; a layer whose counter moved was run here.
        group (ProcessGroup, optional): Defaults to all processes.

    Returns:
        Tensor: ``[M]`` float, the number of processes that ran each layer.
    """
    modules = list(modules)
    if not modules:
        return torch.zeros(0)
    device = modules[0].running_mean.device
    used = torch.tensor([
        float(not torch.equal(m.num_batches_tracked, before))
        for m, before in zip(modules, tracked_before)
    ],
                        device=device)
    flat = torch.cat([
        torch.cat([
            m.running_mean.float(),
            m.running_var.float(),
            m.num_batches_tracked.float().view(1)
        ]) * u for m, u in zip(modules, used)
    ])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(used, group=group)
        dist.all_reduce(flat, group=group)
    offset = 0
    for m, n in zip(modules, used.tolist()):
        c = m.running_mean.numel()
        if n > 0:
            mean, var, tracked = flat[offset:offset + c], \
                flat[offset + c:offset + 2 * c], flat[offset + 2 * c]
            m.running_mean.copy_(mean / n)
            m.running_var.copy_(var / n)
            m.num_batches_tracked.fill_(int(round(float(tracked) / n)))
        offset += 2 * c + 1
    return used.cpu()
