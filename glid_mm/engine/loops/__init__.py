from glid_mm.engine.loops.gppf_simt_train_loop import (MultiTaskDataLoaders,
                                                       SIMTTrainLoop)
from glid_mm.engine.loops.gppf_task_sampler import TaskSampler
from glid_mm.engine.loops.multi_task_val_loop import (MultiTaskTestLoop,
                                                      MultiTaskValLoop)
from glid_mm.engine.loops.task_collectives import find_collectives

__all__ = [
    'MultiTaskDataLoaders', 'MultiTaskTestLoop', 'MultiTaskValLoop',
    'SIMTTrainLoop', 'TaskSampler', 'find_collectives'
]
