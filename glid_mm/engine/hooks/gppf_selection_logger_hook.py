"""Log GPPF's per-task lego unit selection probabilities (Sec. 3.2, App. B)."""
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

#: Scalar name of ``p_l^t[k]``: task ``t``, lego layer index ``l``, unit ``k``.
SELECTION_KEY = 'gppf/{task}/layer{layer}/unit{unit}'


@HOOKS.register_module()
class GPPFSelectionLoggerHook(Hook):
    """Writes every task's lego unit selection probabilities as scalars.

    GPPF Sec. 3.2, eq. 1: the controller of task ``t`` at lego layer ``l``
    holds the selection probability ``p_l^t = softmax(logits_l^t)``, a
    ``[L, N]`` tensor per task (:meth:`LegoResNet.selection_probs`). This
    hook logs ``p`` itself, not the Gumbel sample ``u`` of a forward pass,
    as scalars named ``gppf/<task>/layer<l>/unit<k>`` (``l``: 0-based lego
    layer index as in ``LegoResNet.layer_names`` and ``path()``; 0 is the
    stem when ``lego_stem=True``). They are what Fig. 3 / Fig. 10 (final
    selection) and Fig. 11 (selection over training, App. B) show; plot them
    with ``tools/analysis/gppf_plot_selection.py``.

    When: once before training (step ``runner.iter``, the uniform start of
    a fresh run), then after every ``interval``-th training iteration and
    after the last one (step ``runner.iter + 1``, the iteration count
    mmengine's ``LoggerHook`` uses).

    Where: the values go into the runner's message hub (keys as above,
    without the ``train/`` prefix, and not saved in checkpoints) and
    straight to the runner's visualizer, so its backends record them at
    their own step (``LocalVisBackend``: one line of
    ``<work_dir>/<timestamp>/vis_data/scalars.json``; TensorBoard etc.
    alike). They bypass ``LoggerHook`` on purpose: its text line would carry
    ``T * L * N`` numbers (102 for three tasks on LegoResNet-50 with
    ``N = 2``) and it would record them only at its own interval.

    SIMT (multi-process): every process holds the same controllers
    (:class:`SIMTDistributedWrapper` broadcasts them at start and
    task-averages their gradients), so only rank 0 records; the model
    wrapper is unwrapped. Tasks on a fixed path (Sec. 3.3) run no
    controller and are skipped.

    Args:
        interval (int): Log every ``interval`` training iterations (>= 1).
            Defaults to 10.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 10) -> None:
        if not isinstance(interval, int) or isinstance(interval,
                                                       bool) or interval < 1:
            raise ValueError(f'GPPFSelectionLoggerHook.interval must be a '
                             f'positive int, got {interval!r}')
        self.interval = interval
        self._backbone = None

    @staticmethod
    def find_backbone(model):
        """The one module of ``model`` with per-task selection probabilities.

        Looks for a module with ``task_names`` and ``selection_probs()``
        (e.g. :class:`LegoResNet`) after unwrapping a model wrapper.
        """
        if is_model_wrapper(model):
            model = model.module
        found = [(name, m) for name, m in model.named_modules()
                 if callable(getattr(m, 'selection_probs', None))
                 and getattr(m, 'task_names', None) is not None]
        if not found:
            raise TypeError(
                f'GPPFSelectionLoggerHook found no module with '
                f'selection_probs() in {type(model).__name__}; it is meant '
                f'for GPPF lego backbones such as LegoResNet')
        if len(found) > 1:
            raise ValueError(
                f'GPPFSelectionLoggerHook found several lego backbones '
                f'{[name or "<model>" for name, _ in found]}; their scalars '
                f'would share names')
        return found[0][1]

    def selection_scalars(self, backbone=None) -> Dict[str, float]:
        """``{'gppf/<task>/layer<l>/unit<k>': p_l^t[k]}`` for every task.

        ``p^t = backbone.selection_probs(t)``, ``[L, N]`` (rows sum to 1).
        """
        backbone = self._backbone if backbone is None else backbone
        fixed = getattr(backbone, 'fixed_paths', {}) or {}
        scalars = {}
        for task in backbone.task_names:
            if task in fixed:
                continue
            probs = backbone.selection_probs(task).float().cpu()
            for layer, row in enumerate(probs.tolist()):
                for unit, value in enumerate(row):
                    key = SELECTION_KEY.format(
                        task=task, layer=layer, unit=unit)
                    scalars[key] = float(value)
        return scalars

    def _log(self, runner, step: int) -> None:
        if not is_main_process():
            return
        scalars = self.selection_scalars()
        if not scalars:
            return
        runner.message_hub.update_scalars(scalars, resumed=False)
        runner.visualizer.add_scalars(scalars, step=step)

    def before_train(self, runner) -> None:
        self._backbone = self.find_backbone(runner.model)
        self._log(runner, runner.iter)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if self.every_n_train_iters(
                runner, self.interval) or self.is_last_train_iter(runner):
            self._log(runner, runner.iter + 1)
