from .multi_task_val_loop import MultiTaskTestLoop, MultiTaskValLoop
from .simt_train_loop import MultiTaskDataLoaders, SIMTTrainLoop
from .task_sampler import TaskSampler

__all__ = [
    'MultiTaskDataLoaders', 'MultiTaskTestLoop', 'MultiTaskValLoop',
    'SIMTTrainLoop', 'TaskSampler'
]
