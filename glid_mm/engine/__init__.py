"""glid_mm engine pieces (hooks, loops, file backends; registered on import
into mmengine's root registries, visible from every toolbox scope)."""
from .atomic_backend import AtomicLocalBackend, atomic_write
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .model_wrappers import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403

__all__ = [
    'AtomicLocalBackend', 'atomic_write', 'FiniteLossHook',
    'GlooDistributedDataParallel', 'sync_bn_to_gloo',
    'GumbelTemperatureHook', 'MultiTaskDataLoaders',
    'PartwiseOptimWrapperConstructor', 'SIMTDistributedWrapper',
    'SIMTTrainLoop', 'TaskSampler', 'task_average_buffers',
    'task_average_gradients'
]
