"""glid_mm engine pieces (hooks, loops, file backends; registered on import
into mmengine's root registries, visible from every toolbox scope)."""
from glid_mm.engine.atomic_backend import AtomicLocalBackend, atomic_write
from glid_mm.engine.hooks import *  # noqa: F401,F403
from glid_mm.engine.loops import *  # noqa: F401,F403
from glid_mm.engine.model_wrappers import *  # noqa: F401,F403
from glid_mm.engine.optimizers import *  # noqa: F401,F403
from glid_mm.engine.runner import TaskConfigRunner

__all__ = [
    'AtomicLocalBackend', 'atomic_write', 'FiniteLossHook',
    'GlooDistributedDataParallel', 'sync_bn_to_gloo',
    'GumbelTemperatureHook', 'MultiTaskDataLoaders',
    'PartwiseOptimWrapperConstructor', 'SIMTDistributedWrapper',
    'SIMTTrainLoop', 'TaskConfigRunner', 'TaskSampler', 'task_average_buffers',
    'task_average_gradients'
]
