"""Batch normalisation synchronised across all processes (GPPF's SyncBN).

GPPF (Sec. 3.2, "SIMT"; Sec. 4.2, "Importance of SIMT and cross-task BN")
trains a different task on each process and synchronises BatchNorm
statistics over *all* processes, so that the shared backbone normalises with
cross-task mean and variance; without it training diverges (Table 1, row
"SIMT" without "SyncBN").

``torch.nn.SyncBatchNorm`` refuses CPU tensors, so it cannot run the gloo
(CPU) tests or CPU launches. This layer does the same computation with one
autograd-aware ``all_reduce`` of ``[sum(x), sum(x^2), count]`` per channel,
which works with gloo on CPU and NCCL on GPU, and whose backward
all-reduces the gradient of the statistics (as ``SyncBatchNorm``'s
backward does). Processes may hold batches of different sizes and shapes:
the statistics are weighted by each process's element count.

Collectives pair up by call order, so every process must call these layers
in the same order each iteration: in the forward pass (true for a shared
backbone that every process runs; :class:`LegoResNet` runs every unit in
multi-process training, and task-specific heads must use plain BN, which
:class:`GPPFMultiTaskModel` checks) and, with ``sync_backward``, in the
backward pass. Outside training, or without a process group, it is plain
BatchNorm.

Gradient checkpointing (GPPF App. D.1, "Model Checkpoint is used") reruns
a unit's forward pass during the backward pass. A BatchNorm inside it
would then all-reduce a second time, in backward order, pairing the
statistics of whatever unit each process recomputes (different units under
hard sampling or fixed paths), and update its running statistics twice.
:func:`checkpoint_sync_bn` checkpoints a function so that the rerun reuses
the statistics reduced in the forward pass: no collective and no running
statistics update in the recomputation, the gradients of the statistics
still all-reduced where ``sync_backward`` asks for it.
"""
import threading
from functools import partial
from typing import Callable, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the backward sums the gradients likewise."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        tensor = tensor.clone()
        dist.all_reduce(tensor, group=group)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _ReplayAllReduceSum(torch.autograd.Function):
    """Forward: the total reduced in the original forward pass (no
    collective); backward: the gradient summed over processes, as
    :class:`_AllReduceSum`'s backward."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, total: torch.Tensor, group):
        ctx.group = group
        return total.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None, None


class _Region:
    """What the BatchNorm layers of one checkpointed call computed in the
    forward pass, for its recomputation: reduced statistics by layer, in
    call order."""

    def __init__(self) -> None:
        self.stats = {}
        self.reads = {}


_STATE = threading.local()


class _RegionMode:
    """Context (``context_fn`` of :func:`torch.utils.checkpoint`) marking
    the original forward (``recompute=False``) or the rerun of one
    checkpointed call. During the rerun the other BatchNorm layers of
    ``module`` (plain ``BN``) keep their running statistics: momentum 0
    and ``num_batches_tracked`` restored on exit."""

    def __init__(self, region: _Region, recompute: bool,
                 module: Optional[nn.Module]) -> None:
        self.region, self.recompute = region, recompute
        self.plain_bn = [] if not recompute or module is None else [
            m for m in module.modules()
            if isinstance(m, _BatchNorm) and not isinstance(
                m, CrossTaskSyncBN) and m.training and m.track_running_stats
        ]

    def __enter__(self) -> None:
        self.previous = getattr(_STATE, 'mode', None)
        _STATE.mode = (self.region, self.recompute)
        if self.recompute:  # each rerun reads the stash from the start
            self.region.reads = {}
        self.saved = [(m.momentum, m.num_batches_tracked.clone())
                      for m in self.plain_bn]
        for m in self.plain_bn:
            m.momentum = 0.

    def __exit__(self, *exc) -> None:
        _STATE.mode = self.previous
        for m, (momentum, tracked) in zip(self.plain_bn, self.saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


def _checkpoint_contexts(
        module: Optional[nn.Module] = None) -> Tuple[_RegionMode, _RegionMode]:
    region = _Region()
    return (_RegionMode(region, False,
                        None), _RegionMode(region, True, module))


def checkpoint_sync_bn(fn: Callable, *args):
    """``fn(*args)`` with gradient checkpointing (non-reentrant) whose
    recomputation reuses the forward pass's :class:`CrossTaskSyncBN`
    statistics (see the module docstring) and, when ``fn`` is a module,
    leaves the running statistics of its plain BatchNorm layers alone
    (updated once per step, as without checkpointing). Plain
    ``torch.utils.checkpoint`` semantics otherwise."""
    module = fn if isinstance(fn, nn.Module) else None
    return checkpoint(
        fn,
        *args,
        use_reentrant=False,
        context_fn=partial(_checkpoint_contexts, module))


@MODELS.register_module()
class CrossTaskSyncBN(_BatchNorm):
    """BatchNorm whose training statistics are reduced over all processes.

    Registered in mmengine's root ``MODELS`` registry (where mmcv keeps its
    norm layers), so ``norm_cfg=dict(type='CrossTaskSyncBN')`` resolves in
    every toolbox scope. The name abbreviation is ``bn``, so a ResNet's
    ``bn1`` etc. keep their state-dict names.

    Args:
        num_features (int): Channels ``C`` of the input ``[B, C, *]``.
        eps (float): Added to the variance. Defaults to 1e-5.
        momentum (float): Running-statistics momentum. Defaults to 0.1.
        affine (bool): Learnable scale and shift. Defaults to True.
        track_running_stats (bool): Keep running statistics. Defaults to
            True.
        process_group (optional): Group to reduce over; ``None`` = all
            processes (the paper's setting). Defaults to None.
        sync_backward (bool): All-reduce the statistics' gradient in the
            backward pass (exact SyncBN gradient). That needs the layer in
            every process's autograd graph; where processes run different
            units (hard sampling, fixed paths) :class:`LegoResNet` sets it
            False and the other processes' statistics act as constants in
            the backward pass (forward statistics stay cross-task).
            Defaults to True.
    """

    _abbr_ = 'bn'

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 process_group=None,
                 sync_backward: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine,
                         track_running_stats)
        self.process_group = process_group
        self.sync_backward = sync_backward

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'CrossTaskSyncBN expects [B, C, *] input, got '
                             f'{input.dim()}-D')

    def _synchronised(self) -> bool:
        return (self.training and dist.is_available()
                and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, *]`` -> same shape."""
        self._check_input_dim(x)
        region, recompute = getattr(_STATE, 'mode', None) or (None, False)
        if not self.training:
            region, recompute = None, False
        if not self._synchronised():
            if not recompute:
                return super().forward(x)
            # rerun: same batch statistics, running statistics untouched
            # (momentum 0; the same tensors as the first forward, which
            # non-reentrant checkpointing compares)
            return F.batch_norm(x, self.running_mean, self.running_var,
                                self.weight, self.bias, True, 0., self.eps)
        c = x.shape[1]
        dims = [d for d in range(x.dim()) if d != 1]
        xf = x.float()
        count = torch.full((1, ),
                           x.numel() // c,
                           dtype=torch.float32,
                           device=x.device)
        stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])
        stash = None
        if recompute:
            k = region.reads.get(self, 0)
            region.reads[self] = k + 1
            stash = region.stats[self][k]
        elif region is not None:
            stash = region.stats.setdefault(self, [])
        if recompute:
            if self.sync_backward:
                stats = _ReplayAllReduceSum.apply(stats, stash,
                                                  self.process_group)
            else:
                stats = stats + (stash - stats.detach())
        elif self.sync_backward:
            stats = _AllReduceSum.apply(stats, self.process_group)
        else:
            # other processes' statistics enter as constants
            total_stats = stats.detach().clone()
            dist.all_reduce(total_stats, group=self.process_group)
            stats = stats + (total_stats - stats.detach())
        if isinstance(stash, list):
            stash.append(stats.detach())
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)
        if self.track_running_stats and not recompute:
            self._update_running_stats(mean.detach(), var.detach(),
                                       total.detach())
        shape = [1, c] + [1] * (x.dim() - 2)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor,
                              total: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average
            momentum = 1.0 / float(self.num_batches_tracked)
        else:
            momentum = self.momentum
        # no host sync on ``total``: a single value per channel gives a
        # count of 1, clamped so the unbiased variance stays finite
        unbiased = var * total / (total - 1).clamp_min(1)
        self.running_mean.mul_(1 - momentum).add_(
            mean.to(self.running_mean.dtype), alpha=momentum)
        self.running_var.mul_(1 - momentum).add_(
            unbiased.to(self.running_var.dtype), alpha=momentum)
