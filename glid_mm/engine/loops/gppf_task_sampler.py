"""Per-process task sampling for SIMT (GPPF Sec. 3.2 and App. D.1)."""
import math
from typing import Dict, Optional

import numpy as np


class TaskSampler:
    """Draws this process's task for each iteration from fixed weights.

    GPPF App. D.1: "The task sampling weight (used to sample task on each
    GPU) of IN21K, COCO, ... is manually set to 4.0, 2.5, ...". Each process
    draws independently with probability ``weight / sum(weights)``.

    The draw for iteration ``i`` uses a generator seeded with
    ``(seed, rank, i)``, so each process has its own reproducible stream and
    a resumed run draws exactly the tasks the interrupted run would have,
    without saving generator state.

    ``per_process=False`` is Table 1's per-batch task sampling (the row
    before SIMT): the generator is seeded with ``(seed, i)`` only, so every
    process draws the same task in an iteration.

    Args:
        weights (dict[str, float]): Task name -> weight (finite, ``> 0``).
        seed (int): Base seed (non-negative).
        rank (int): This process's rank (non-negative).
        per_process (bool): Each process draws its own task (SIMT).
            Defaults to True.
    """

    def __init__(self,
                 weights: Dict[str, float],
                 seed: int,
                 rank: int,
                 per_process: bool = True) -> None:
        if not isinstance(weights, dict) or not weights:
            raise ValueError(f'task weights must be a non-empty dict, got '
                             f'{weights!r}')
        for name, weight in weights.items():
            try:
                value = float(weight)
            except (TypeError, ValueError):
                value = float('nan')
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'task weight of {name!r} must be a finite '
                                 f'number > 0, got {weight!r}')
        if int(seed) < 0 or int(rank) < 0:
            raise ValueError(f'seed and rank must be >= 0, got {seed}, {rank}')
        self.tasks = list(weights)
        total = sum(float(w) for w in weights.values())
        self.probs = np.array([float(weights[t]) / total for t in self.tasks])
        self.seed = int(seed)
        self.rank = int(rank)
        self.per_process = bool(per_process)

    def sample(self, iteration: int, rank: Optional[int] = None) -> str:
        """The task of process ``rank`` (default: this one) at ``iteration``.

        Any process can compute any other's draw (the seed is shared), which
        the loop uses to log how many processes ran each task.
        """
        rank = self.rank if rank is None else int(rank)
        key = [self.seed, rank, int(iteration)] if self.per_process else \
            [self.seed, int(iteration)]
        rng = np.random.default_rng(key)
        return self.tasks[int(rng.choice(len(self.tasks), p=self.probs))]
