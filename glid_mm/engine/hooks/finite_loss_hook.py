"""Stop training at the first non-finite loss, naming what went wrong."""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when any logged loss is NaN or Inf.

    mmengine keeps training through NaN losses and mmdet's
    ``CheckInvalidLossHook`` checks only the total loss every 50 iterations;
    this hook checks every loss term (``loss*`` keys of the train step's log
    variables) every iteration and names the iteration, the task (from the
    data samples' ``task`` metainfo when present, e.g. under SIMT) and the
    offending terms. The checkpoint of the last good interval is untouched.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
        enabled (bool): ``False`` restores mmengine's default behaviour
            (keep training). Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1, enabled: bool = True) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'FiniteLossHook.interval must be a positive '
                             f'int, got {interval!r}')
        self.interval = interval
        self.enabled = enabled

    @staticmethod
    def _task_of(data_batch) -> Optional[str]:
        samples = data_batch.get('data_samples') if isinstance(
            data_batch, dict) else None
        if not samples:
            return None
        tasks = {getattr(s, 'metainfo', {}).get('task') for s in samples}
        tasks.discard(None)
        return ','.join(sorted(map(str, tasks))) or None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not self.enabled or not outputs or not self.every_n_train_iters(
                runner, self.interval):
            return
        bad = {}
        for key, value in outputs.items():
            # mmengine sums every log variable whose name contains 'loss'
            # (``loss_cls``, ``decode.loss_ce``, ``det.loss_bbox``)
            if 'loss' not in key:
                continue
            value = float(value.item() if hasattr(value, 'item') else value)
            if not math.isfinite(value):
                bad[key] = value
        if bad:
            task = self._task_of(data_batch)
            terms = ', '.join(f'{k}={v}' for k, v in bad.items())
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}'
                f'{f" (task {task})" if task else ""}: {terms}. Lower the '
                'learning rate, enable gradient clipping '
                '(optim_wrapper.clip_grad) or check the data; set '
                'FiniteLossHook(enabled=False) to keep training anyway.')
