"""glid_mm engine pieces (hooks, loops, model wrappers, optimizer
constructors, runners, file backends; registered on import into mmengine's
root registries, visible from every toolbox scope)."""
from glid_mm.engine.atomic_backend import AtomicLocalBackend, atomic_write
from glid_mm.engine.hooks import (AtomicCheckpointHook, FiniteLossHook,
                                  GPPFSelectionLoggerHook,
                                  GumbelTemperatureHook, LiTTokenizerHook)
from glid_mm.engine.loops import (MultiTaskDataLoaders, MultiTaskTestLoop,
                                  MultiTaskValLoop, SIMTTrainLoop, TaskSampler)
from glid_mm.engine.model_wrappers import (GlooDistributedDataParallel,
                                           SIMTDistributedWrapper,
                                           sync_bn_to_gloo,
                                           task_average_buffers,
                                           task_average_gradients)
from glid_mm.engine.optimizers import PartwiseOptimWrapperConstructor
from glid_mm.engine.runner import TaskConfigRunner, build_runner, run_checked

__all__ = [
    'AtomicLocalBackend', 'atomic_write', 'AtomicCheckpointHook',
    'FiniteLossHook', 'GPPFSelectionLoggerHook', 'GumbelTemperatureHook',
    'LiTTokenizerHook', 'MultiTaskDataLoaders', 'MultiTaskTestLoop',
    'MultiTaskValLoop', 'SIMTTrainLoop', 'TaskSampler',
    'GlooDistributedDataParallel', 'SIMTDistributedWrapper', 'sync_bn_to_gloo',
    'task_average_buffers', 'task_average_gradients',
    'PartwiseOptimWrapperConstructor', 'TaskConfigRunner', 'build_runner',
    'run_checked'
]
