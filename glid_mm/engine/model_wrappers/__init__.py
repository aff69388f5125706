from .gloo_ddp import GlooDistributedDataParallel, sync_bn_to_gloo
from .simt_wrapper import SIMTDistributedWrapper
from .task_average import task_average_buffers, task_average_gradients

__all__ = [
    'GlooDistributedDataParallel', 'SIMTDistributedWrapper',
    'sync_bn_to_gloo', 'task_average_buffers', 'task_average_gradients'
]
