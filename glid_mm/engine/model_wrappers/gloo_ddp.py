"""Data-parallel training on CPU processes (gloo)."""
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


def sync_bn_to_gloo(module: nn.Module) -> nn.Module:
    """Replace ``torch.nn.SyncBatchNorm`` layers (mmcv's ``SyncBN``) by
    :class:`~glid_mm.models.layers.CrossTaskSyncBN`, which computes the same
    statistics over all processes with an all-reduce that gloo runs on CPU
    tensors (``SyncBatchNorm`` refuses them). Parameters and buffers are
    kept; returns the converted module."""
    from glid_mm.models.layers.gppf_cross_task_sync_bn import CrossTaskSyncBN
    if isinstance(module, nn.SyncBatchNorm):
        new = CrossTaskSyncBN(module.num_features, module.eps, module.momentum,
                              module.affine, module.track_running_stats,
                              module.process_group)
        new.load_state_dict(module.state_dict())
        for p_new, p_old in zip(new.parameters(), module.parameters()):
            p_new.requires_grad_(p_old.requires_grad)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, sync_bn_to_gloo(child))
    return module


@MODEL_WRAPPERS.register_module()
class GlooDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` for CPU processes.

    What ``tools/train.py`` uses for a multi-process launch on a machine
    without GPUs (``tools/dist_train.sh CONFIG N``): DDP without
    ``device_ids`` (DDP refuses them for CPU modules) and with every
    ``SyncBN`` layer turned into the gloo-capable
    :class:`~glid_mm.models.layers.CrossTaskSyncBN` (same statistics over all
    processes), so GPU configs run unchanged on CPU processes.

    Args:
        module (nn.Module): The model.
        detect_anomalous_params (bool): As mmengine's. Defaults to False.
        **kwargs: ``torch.nn.parallel.DistributedDataParallel`` options
            (``broadcast_buffers``, ``find_unused_parameters``...).
            ``device_ids`` (mmengine's runner passes the local rank) and
            ``output_device`` are dropped: CPU modules take none.
    """

    def __init__(self,
                 module: nn.Module,
                 detect_anomalous_params: bool = False,
                 **kwargs) -> None:
        kwargs['device_ids'] = None
        kwargs.pop('output_device', None)
        super().__init__(
            sync_bn_to_gloo(module),
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)
