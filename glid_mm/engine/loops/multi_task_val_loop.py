"""Per-task validation and test of a GPPF multi-task model (GPPF Sec. 3.2,
Sec. 4.2 / Table 1: every task of the joint model is scored on its own
dataset with its own metric)."""
import logging
from contextlib import contextmanager, nullcontext
from typing import Dict, Iterator, List, Optional, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.dist import is_distributed
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import LOOPS, DefaultScope
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader

from glid_mm.engine.loops.gppf_simt_train_loop import MultiTaskDataLoaders
from glid_mm.utils.gppf_task_configs import refuse_task_config_ref

_LOADER_KEYS = ('dataset', 'batch_size', 'sampler')
_EVALUATOR_KEYS = ('type', 'metrics')


@contextmanager
def rank0_buffers(model: nn.Module) -> Iterator[None]:
    """Within the block, every process holds rank 0's buffers; restored after.

    Under SIMT a task head's BatchNorm running statistics are updated only
    on the processes that ran the task, so buffers differ across processes
    (parameters do not: their gradients are averaged). Rank 0's are the
    ones a checkpoint stores. One broadcast per dtype and device.
    """
    if not is_distributed():
        yield
        return
    buffers = list(model.buffers())
    saved = [b.detach().clone() for b in buffers]
    groups: Dict[tuple, List[torch.Tensor]] = {}
    for b in buffers:
        groups.setdefault((b.dtype, b.device), []).append(b)
    with torch.no_grad():
        for group in groups.values():
            flat = torch.cat([b.reshape(-1) for b in group])
            dist.broadcast(flat, src=0)
            offset = 0
            for b in group:
                b.copy_(flat[offset:offset + b.numel()].view_as(b))
                offset += b.numel()
    try:
        yield
    finally:
        with torch.no_grad():
            for b, old in zip(buffers, saved):
                b.copy_(old)


class _MultiTaskEvalLoop(BaseLoop):
    """Code shared by :class:`MultiTaskValLoop` and
    :class:`MultiTaskTestLoop`; ``_mode`` is ``'val'`` or ``'test'``."""

    _mode = 'val'

    def __init__(self,
                 runner,
                 dataloader: Dict[str, Union[dict, DataLoader]],
                 evaluator: Dict[str, Union[dict, list, Evaluator]],
                 fp16: bool = False,
                 broadcast_buffers: bool = True) -> None:
        mode = self._mode
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model_tasks = getattr(model, 'tasks', None)
        if model_tasks is None:
            raise TypeError(
                f'{type(self).__name__} needs a multi-task model with a '
                f'`tasks` dict (GPPFMultiTaskModel), got '
                f'{type(model).__name__}')
        if not isinstance(dataloader, dict) or not dataloader or any(
                key in dataloader for key in _LOADER_KEYS):
            got = list(dataloader) if isinstance(dataloader,
                                                 dict) else dataloader
            raise ValueError(
                f'{type(self).__name__} needs {mode}_dataloader = dict('
                f'<task>=<dataloader config>, ...), one per task; got '
                f'{got!r}')
        if not isinstance(evaluator, dict) or any(key in evaluator
                                                  for key in _EVALUATOR_KEYS):
            raise ValueError(
                f'{type(self).__name__} needs {mode}_evaluator = dict('
                f'<task>=<metric config(s)>, ...), one per task of '
                f'{mode}_dataloader; got {evaluator!r}')
        for task in dataloader:
            if task not in model_tasks:
                raise KeyError(
                    f'{mode}_dataloader names task {task!r}, unknown to the '
                    f'model (tasks: {list(model_tasks)})')
            if task not in evaluator:
                raise KeyError(f'{mode}_dataloader names task {task!r} but '
                               f'{mode}_evaluator has no entry for it (has '
                               f'{list(evaluator)})')
        for task in evaluator:
            if task not in dataloader:
                raise KeyError(f'{mode}_evaluator names task {task!r} but '
                               f'{mode}_dataloader has no entry for it (has '
                               f'{list(dataloader)})')

        self.task_scopes: Dict[str, Optional[str]] = {
            task: getattr(model, 'task_scopes', {}).get(task)
            for task in dataloader
        }
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        loaders: Dict[str, DataLoader] = {}
        self.evaluators: Dict[str, Evaluator] = {}
        for task, loader_cfg in dataloader.items():
            refuse_task_config_ref(loader_cfg, f'{mode}_dataloader.{task}')
            with DefaultScope.overwrite_default_scope(self.task_scopes[task]):
                loaders[task] = loader_cfg if isinstance(
                    loader_cfg, DataLoader) else runner.build_dataloader(
                        loader_cfg,
                        seed=runner.seed,
                        diff_rank_seed=diff_rank_seed)
                metric_cfg = evaluator[task]
                refuse_task_config_ref(metric_cfg, f'{mode}_evaluator.{task}')
                if isinstance(metric_cfg, dict):
                    metric_cfg = dict(metric_cfg)  # build_evaluator edits it
                self.evaluators[task] = runner.build_evaluator(metric_cfg)
            meta = getattr(loaders[task].dataset, 'metainfo', None)
            if meta is not None:
                self.evaluators[task].dataset_meta = meta
        # not a dict any more: BaseLoop keeps it as the loop's dataloader
        super().__init__(runner, MultiTaskDataLoaders(loaders))
        self.fp16 = fp16
        self.broadcast_buffers = broadcast_buffers

    @property
    def evaluator(self) -> Dict[str, Evaluator]:
        """``runner.val_evaluator`` / ``test_evaluator``: task -> Evaluator."""
        return self.evaluators

    def run(self) -> Dict[str, object]:
        """Evaluate every task in turn; returns ``{'<task>/<metric>': v}``.

        Every process runs every task in the same (config) order, on its
        shard of that task's dataset, so the result collection inside each
        task's ``Evaluator.evaluate`` pairs up across processes.
        """
        mode = self._mode
        runner = self.runner
        runner.call_hook(f'before_{mode}')
        runner.call_hook(f'before_{mode}_epoch')
        runner.model.eval()
        metrics: Dict[str, object] = {}
        sync = rank0_buffers(runner.model) if self.broadcast_buffers \
            else nullcontext()
        with sync:
            idx = 0  # hooks see one running batch index over all tasks
            for task, loader in self.dataloader.loaders.items():
                metrics.update(self._run_task(task, loader, idx))
                idx += len(loader)
        runner.call_hook(f'after_{mode}_epoch', metrics=metrics)
        runner.call_hook(f'after_{mode}')
        return metrics

    def _run_task(self, task: str, loader: DataLoader,
                  idx: int) -> Dict[str, object]:
        """Run and score one task; ``idx``: running index of its 1st batch."""
        meta = getattr(loader.dataset, 'metainfo', None)
        if meta is not None:
            self.runner.visualizer.dataset_meta = meta
        with DefaultScope.overwrite_default_scope(self.task_scopes[task]):
            for i, data_batch in enumerate(loader):
                for sample in data_batch['data_samples']:
                    sample.set_metainfo(dict(task=task))
                self.run_iter(idx + i, data_batch)
            task_metrics = self.evaluators[task].evaluate(len(loader.dataset))
        if not task_metrics:
            print_log(
                f'{self._mode}: task {task!r} has no metrics (its evaluator '
                f'returned none, e.g. CocoMetric without any detection)',
                logger='current',
                level=logging.WARNING)
        return {f'{task}/{key}': value for key, value in task_metrics.items()}

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: dict) -> None:
        """One batch of one task (its samples carry ``metainfo['task']``)."""
        mode = self._mode
        task = data_batch['data_samples'][0].metainfo['task']
        self.runner.call_hook(
            f'before_{mode}_iter', batch_idx=idx, data_batch=data_batch)
        with autocast(enabled=self.fp16):
            outputs = getattr(self.runner.model, f'{mode}_step')(data_batch)
        self.evaluators[task].process(
            data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            f'after_{mode}_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)


@LOOPS.register_module()
class MultiTaskValLoop(_MultiTaskEvalLoop):
    """Validates each task of a GPPF multi-task model on its own data.

    GPPF Sec. 3.2 defines task ``t = (D_t, alg_t)``: its own dataset and its
    own algorithm; Table 1 (Sec. 4.2) scores the jointly trained model per
    task (COCO box/mask AP, ADE20K mIoU, IN21K top-1). This loop does that
    during and after SIMT training. For each task, in config order:

    1. its dataloader and evaluator are built in the task's toolbox scope
       (``model.task_scopes``: mmdet, mmseg, mmpretrain ...), so stock
       dataset, transform and metric names (``CocoMetric``, ``IoUMetric``,
       ``Accuracy``) resolve without ``_scope_`` keys;
    2. every batch is stamped ``metainfo['task'] = <task>`` and run through
       ``model.val_step``: :class:`GPPFMultiTaskModel` picks the task's
       preprocessor and model and runs the lego backbone on the task's path
       (in eval mode :class:`LegoResNet` takes each layer's argmax unit);
    3. the task's evaluator collects the predictions of all processes (each
       evaluates its shard of the dataset, as mmengine's ``ValLoop``) and
       its metrics are prefixed with the task: ``det/coco/bbox_mAP``,
       ``seg/mIoU``, ``cls/accuracy/top1``.

    All tasks' metrics go to the hooks in one dict, so ``LoggerHook`` logs
    them and ``CheckpointHook(save_best='det/coco/bbox_mAP')`` works.

    In a distributed run the processes first take rank 0's buffers
    (:func:`rank0_buffers`, restored afterwards): under SIMT a task head's
    BatchNorm statistics move only on the processes that ran that task, so
    without this each shard would be scored by a different model; with it
    the metrics are those of the model the checkpoint stores, the same as
    ``tools/test.py`` on that checkpoint with any number of processes.

    Config::

        val_dataloader = dict(det=dict(batch_size=1, dataset=...),
                              seg=dict(...), cls=dict(...))
        val_evaluator = dict(det=dict(type='CocoMetric', ...),
                             seg=dict(type='IoUMetric', iou_metrics=['mIoU']),
                             cls=dict(type='Accuracy', topk=(1, 5)))
        val_cfg = dict(type='MultiTaskValLoop')

    Tasks may be a subset of the model's tasks; the two dicts must name the
    same tasks. In the config an entry may be ``dict(from_config=<path>,
    **changes)``: the ``val_dataloader`` / ``val_evaluator`` (test loop:
    ``test_*``) of that single-task config, which ``TaskConfigRunner``
    resolves when the runner is built (the loop receives plain dicts and
    refuses an unresolved reference;
    :mod:`glid_mm.utils.gppf_task_configs`)::

        val_dataloader = dict(
            det=dict(from_config='{{ fileDirname }}/tasks/det.py',
                     dataset=dict(indices=8)), ...)
        val_evaluator = dict(
            det=dict(from_config='{{ fileDirname }}/tasks/det.py'), ...)

    How it fits mmengine's runner (0.10): the runner keeps
    ``val_dataloader`` and ``val_evaluator`` as raw config until
    ``build_val_loop``, which passes them unchanged to the loop as
    ``dataloader`` and ``evaluator``. The stock ``ValLoop`` would hand the
    dict of dicts to ``runner.build_dataloader`` / ``build_evaluator``
    (through ``BaseLoop.__init__``) and fail; this loop instead builds one
    dataloader and one evaluator per task itself, with the runner's own
    builders under that task's scope, and then gives ``BaseLoop`` the
    built :class:`MultiTaskDataLoaders`. So no runner subclass or config
    preprocessing is needed, and ``--cfg-options
    val_dataloader.det.batch_size=2`` works. Hooks see
    ``runner.val_dataloader`` (``len()`` = all tasks' batches, which the
    running ``batch_idx`` counts; ``dataset.metainfo``: task -> metainfo)
    and ``runner.val_evaluator`` (task -> ``Evaluator``); before each task,
    ``runner.visualizer.dataset_meta`` is set to that task's metainfo.

    Args:
        runner (Runner): The runner.
        dataloader (dict[str, dict | DataLoader]): Task -> dataloader (a
            config, a task-config reference or a built one).
        evaluator (dict[str, dict | list | Evaluator]): Task -> metric
            config(s), a task-config reference or an ``Evaluator``.
        fp16 (bool): Evaluate under autocast. Defaults to False.
        broadcast_buffers (bool): Evaluate with rank 0's buffers on every
            process (see above). Defaults to True.

    Raises:
        ValueError: ``dataloader`` / ``evaluator`` are not dicts keyed by
            task (e.g. a single-task ``val_dataloader``).
        KeyError: A task unknown to the model, or named in only one of
            ``dataloader`` and ``evaluator`` (the message names it).
        TypeError: The model has no ``tasks``.
    """

    _mode = 'val'


@LOOPS.register_module()
class MultiTaskTestLoop(_MultiTaskEvalLoop):
    """Tests each task of a GPPF multi-task model on its own data.

    The same as :class:`MultiTaskValLoop` (GPPF Sec. 3.2, Sec. 4.2) with
    ``test_dataloader`` / ``test_evaluator``, ``model.test_step`` and the
    ``*_test_*`` hooks::

        test_dataloader = dict(det=..., seg=..., cls=...)
        test_evaluator = dict(det=..., seg=..., cls=...)
        test_cfg = dict(type='MultiTaskTestLoop')

    Args:
        runner (Runner): The runner.
        dataloader (dict[str, dict | DataLoader]): Task -> dataloader (a
            config, a task-config reference or a built one).
        evaluator (dict[str, dict | list | Evaluator]): Task -> metric
            config(s), a task-config reference or an ``Evaluator``.
        fp16 (bool): Test under autocast. Defaults to False.
        broadcast_buffers (bool): Test with rank 0's buffers on every
            process. Defaults to True.
    """

    _mode = 'test'


__all__: List[str] = ['MultiTaskValLoop', 'MultiTaskTestLoop', 'rank0_buffers']
