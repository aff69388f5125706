from .simt_train_loop import MultiTaskDataLoaders, SIMTTrainLoop
from .task_sampler import TaskSampler

__all__ = ['MultiTaskDataLoaders', 'SIMTTrainLoop', 'TaskSampler']
