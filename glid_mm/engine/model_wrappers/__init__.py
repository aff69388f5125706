from .simt_wrapper import SIMTDistributedWrapper
from .task_average import task_average_gradients

__all__ = ['SIMTDistributedWrapper', 'task_average_gradients']
