"""Distributed model wrapper for SIMT: task-averaged gradients, no DDP."""
from typing import Dict, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.modules.batchnorm import _BatchNorm

from glid_mm.engine.model_wrappers.gppf_task_average import (
    task_average_buffers, task_average_gradients)


@MODEL_WRAPPERS.register_module()
class SIMTDistributedWrapper(nn.Module):
    """Wraps a model for SIMT training (GPPF Sec. 3.2) instead of DDP.

    Under SIMT each process runs a different task, so different processes
    use different parameters (task heads, lego units, controllers). DDP
    would average every gradient over all processes (and needs
    ``find_unused_parameters``, which users report slow or hanging); this
    wrapper instead, after the backward pass and before the optimizer step,
    averages each parameter's gradient over the processes that used it
    (:func:`task_average_gradients`). Cross-task BatchNorm statistics come
    from :class:`CrossTaskSyncBN` layers inside the model; the running
    statistics of the other (per-task, plain) BatchNorm layers are averaged
    over the processes that ran them after each step
    (:func:`task_average_buffers`), so every process, and so the
    checkpoint, holds the same values.

    Use it with ``model_wrapper_cfg = dict(type='SIMTDistributedWrapper')``
    (mmengine's runner builds it in distributed runs only; a
    single-process run trains the bare model, where averaging over one
    process is the identity). On construction the parameters and buffers of
    rank 0 are broadcast, as DDP does.

    Args:
        module (nn.Module): An mmengine ``BaseModel`` (e.g.
            :class:`GPPFMultiTaskModel`).
        bucket_size_mb (float): Gradient all-reduce bucket size. Defaults to
            25 (DDP's default).
        broadcast_on_init (bool): Broadcast rank 0's parameters and buffers.
            Defaults to True.
    """

    def __init__(self,
                 module: nn.Module,
                 bucket_size_mb: float = 25,
                 broadcast_on_init: bool = True) -> None:
        super().__init__()
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError('SIMTDistributedWrapper needs an initialised '
                               'process group (launch with --launcher '
                               'pytorch, e.g. tools/dist_train.sh)')
        if not float(bucket_size_mb) > 0:
            raise ValueError(f'bucket_size_mb must be > 0, got '
                             f'{bucket_size_mb!r}')
        self.module = module
        self.bucket_size_mb = float(bucket_size_mb)
        if broadcast_on_init:
            with torch.no_grad():
                for tensor in list(module.parameters()) + list(
                        module.buffers()):
                    dist.broadcast(tensor.data, src=0)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """mmengine's ``BaseModel.train_step`` with the gradient averaging
        between ``backward`` and ``step``."""
        module = self.module
        from glid_mm.models.layers.gppf_cross_task_sync_bn import \
            CrossTaskSyncBN
        task_bns = [
            m for m in module.modules()
            if isinstance(m, _BatchNorm) and not isinstance(
                m, CrossTaskSyncBN) and m.training and m.track_running_stats
        ]
        tracked = [m.num_batches_tracked.clone() for m in task_bns]
        with optim_wrapper.optim_context(self):
            data = module.data_preprocessor(data, training=True)
            losses = module._run_forward(data, mode='loss')
        parsed_loss, log_vars = module.parse_losses(losses)
        optim_wrapper.backward(optim_wrapper.scale_loss(parsed_loss))
        if optim_wrapper.should_update():
            task_average_gradients(
                module.parameters(), bucket_size_mb=self.bucket_size_mb)
            optim_wrapper.step()
            optim_wrapper.zero_grad()
        task_average_buffers(task_bns, tracked)
        return log_vars

    def val_step(self, data: Union[dict, tuple, list]) -> list:
        return self.module.val_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        return self.module.test_step(data)
