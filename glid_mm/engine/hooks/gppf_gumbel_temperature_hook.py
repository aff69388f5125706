"""Linear Gumbel-Softmax temperature schedule of GPPF (App. D.1)."""
import logging
import math
from typing import List

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class GumbelTemperatureHook(Hook):
    """Decays the Gumbel-Softmax temperature linearly, then holds it.

    GPPF App. D.1: "The temperature for the Gumbel-Softmax sampling is set
    as 5.0 at the start of the training and linearly decays to 0.01 at 45w
    iters. The temperature is kept fixed as 0.01 for the last 5w training
    iters." Dynamic fine-tuning (App. D.2) decays over half the steps.

    ``tau(i) = start + (end - start) * min(i / decay_iters, 1)`` for
    iteration ``i`` (0-based, the one about to run). Before every training
    iteration the hook calls ``set_temperature(tau)`` on every module of the
    model that has one (e.g. :class:`LegoResNet`) and logs ``tau`` as the
    scalar ``train/gumbel_tau`` (shown by the logger as ``gumbel_tau``).
    On resume the value follows from the iteration alone.

    Args:
        start (float): ``tau`` at iteration 0 (> 0). Defaults to 5.0.
        end (float): ``tau`` from ``decay_iters`` on (> 0). Defaults to 0.01.
        decay_iters (int): Iteration at which ``end`` is reached (>= 1).
            Defaults to 450000 (App. D.1).
    """

    priority = 'NORMAL'

    def __init__(self,
                 start: float = 5.0,
                 end: float = 0.01,
                 decay_iters: int = 450000) -> None:
        for name, value in (('start', start), ('end', end)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and value > 0):
                raise ValueError(f'GumbelTemperatureHook.{name} must be a '
                                 f'finite number > 0, got {value!r}')
        if not isinstance(decay_iters, int) or decay_iters < 1:
            raise ValueError(f'GumbelTemperatureHook.decay_iters must be a '
                             f'positive int, got {decay_iters!r}')
        self.start = float(start)
        self.end = float(end)
        self.decay_iters = decay_iters
        self._targets: List = []

    def temperature(self, iteration: int) -> float:
        """``tau`` at 0-based ``iteration``."""
        progress = min(max(iteration, 0) / self.decay_iters, 1.0)
        return self.start + (self.end - self.start) * progress

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._targets = [
            m for m in model.modules()
            if callable(getattr(m, 'set_temperature', None))
        ]
        if not self._targets:
            raise TypeError(
                f'GumbelTemperatureHook found no module with '
                f'set_temperature() in {type(model).__name__}; it is meant '
                f'for Gumbel-Softmax backbones such as LegoResNet')
        differing = sorted({
            float(m.temperature)
            for m in self._targets
            if float(getattr(m, 'temperature', self.start)) != self.start
        })
        if differing:
            print_log(
                f'GumbelTemperatureHook: the model\'s temperature '
                f'{differing} is replaced by this hook\'s schedule '
                f'(start={self.start}, end={self.end}, decay_iters='
                f'{self.decay_iters}); set the hook\'s start to change it',
                logger='current',
                level=logging.WARNING)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        tau = self.temperature(runner.iter)
        for module in self._targets:
            module.set_temperature(tau)
        runner.message_hub.update_scalar('train/gumbel_tau', tau)
