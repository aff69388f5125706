from glid_mm.engine.model_wrappers.gloo_ddp import (
    GlooDistributedDataParallel, sync_bn_to_gloo)
from glid_mm.engine.model_wrappers.gppf_simt_wrapper import \
    SIMTDistributedWrapper
from glid_mm.engine.model_wrappers.gppf_task_average import (
    task_average_buffers, task_average_gradients)

__all__ = [
    'GlooDistributedDataParallel', 'SIMTDistributedWrapper', 'sync_bn_to_gloo',
    'task_average_buffers', 'task_average_gradients'
]
