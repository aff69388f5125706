"""A stand-in for the runner :class:`SIMTTrainLoop` reads when it is built
(model, world size, rank, seed, randomness settings)."""
from types import SimpleNamespace
from typing import Dict, Optional, Sequence

import torch.nn as nn


def fake_runner(tasks: Sequence[str] = ('det', 'seg'),
                world_size: int = 1,
                model: Optional[nn.Module] = None,
                task_models: Optional[Dict[str, nn.Module]] = None):
    """``model`` as given, else a module whose ``tasks`` hold
    ``task_models`` (default: an ``nn.Identity`` per task of ``tasks``)."""
    if model is None:
        model = nn.Module()
        model.tasks = nn.ModuleDict(task_models
                                    or {t: nn.Identity()
                                        for t in tasks})
    return SimpleNamespace(
        model=model,
        world_size=world_size,
        rank=0,
        seed=0,
        _randomness_cfg=dict())
