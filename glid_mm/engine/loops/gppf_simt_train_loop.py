"""SIMT: Single Iteration Multiple Tasks (GPPF Sec. 3.2, Fig. 2b)."""
import bisect
import logging
from typing import Dict, List, Optional, Tuple, Union

from mmengine.dist import broadcast_object_list
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import LOOPS, DefaultScope
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator
from mmengine.runner.utils import calc_dynamic_intervals
from torch.utils.data import DataLoader

from glid_mm.engine.loops.gppf_task_sampler import TaskSampler
from glid_mm.engine.loops.task_collectives import find_collectives
from glid_mm.engine.model_wrappers import SIMTDistributedWrapper
from glid_mm.utils.gppf_task_configs import refuse_task_config_ref


class _TaskDatasets:
    """``runner.train_dataloader.dataset``: per-task metainfo."""

    def __init__(self, loaders: Dict[str, DataLoader]) -> None:
        self.metainfo = {
            name: getattr(loader.dataset, 'metainfo', None)
            for name, loader in loaders.items()
        }


class MultiTaskDataLoaders:
    """The loop's ``dataloader``: one dataloader per task.

    mmengine hooks read ``runner.train_dataloader`` (``len()``, ``.dataset``);
    ``len`` is the sum of the task loaders' lengths (one pass over every
    task) and ``dataset.metainfo`` maps task -> that dataset's metainfo.
    """

    def __init__(self, loaders: Dict[str, DataLoader]) -> None:
        self.loaders = loaders
        self.dataset = _TaskDatasets(loaders)

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())

    def __getitem__(self, task: str) -> DataLoader:
        return self.loaders[task]


def _refuse_collectives(model_tasks, tasks, world_size: int) -> None:
    """Refuse task models whose training runs a collective: under SIMT the
    other processes run other tasks (:mod:`.task_collectives`)."""
    found = {
        task: hits
        for task in tasks if (hits := find_collectives(model_tasks[task]))
    }
    if found:
        raise RuntimeError(
            f'SIMT with {world_size} processes runs one drawn task per '
            f'process, but training ' +
            '; '.join(f'task {task!r} runs a collective ({", ".join(hits)})'
                      for task, hits in found.items()) +
            ': it would pair with what the processes of other tasks run at '
            'that moment (a hang, or one task\'s count added into another\'s '
            'tensor). Use a head without collectives in its loss, one with a '
            'local_normalisers() context (GLIDDETRHead, GLIDMaskHead), or '
            'train_cfg.task_sampling="per_iteration" (every process runs '
            'the same task in an iteration)')


@LOOPS.register_module()
class SIMTTrainLoop(BaseLoop):
    """Iteration-based training where every process runs its own task.

    GPPF Sec. 3.2: "each virtual device ``i`` first samples a task ``t_i``
    and a batch of corresponding training data ``b_i``", computes that
    task's loss, and the gradients are fused by a task average. Per
    iteration each process here:

    1. draws its task from ``task_weights`` with its own generator
       (:class:`TaskSampler`, seeded by ``(seed, rank, iteration)``);
    2. takes the next batch of that task's dataloader (each task keeps its
       own dataset, pipeline, batch size and input shape) and stamps
       ``metainfo['task']`` on its data samples;
    3. calls ``runner.model.train_step``: :class:`GPPFMultiTaskModel` runs
       the task's preprocessor, model and loss; in distributed runs
       :class:`SIMTDistributedWrapper` averages each gradient over the
       processes that used it before the optimizer step.

    Config (the runner passes ``train_dataloader`` as ``dataloader``)::

        train_dataloader = dict(det=dict(batch_size=2, dataset=...),
                                seg=dict(...), cls=dict(...))
        train_cfg = dict(type='SIMTTrainLoop', max_iters=500000,
                         task_weights=dict(det=2.5, seg=1.0, cls=4.0))
        model_wrapper_cfg = dict(type='SIMTDistributedWrapper')

    Each task's dataloader is built in that task's toolbox scope
    (``model.task_scopes``), so stock dataset and transform names resolve
    without ``_scope_`` keys. Besides the task losses (``det.loss_cls``
    ...), the log shows ``simt.<task>``: how many processes ran each task
    in the iteration (every process can recompute every draw).

    Design choice: the three dicts (model tasks, dataloaders, weights) are
    keyed by task name, so each can be overridden on its own
    (``--cfg-options train_cfg.task_weights.det=3``); the GPPF configs
    compose the first two from standard single-task configs: in the
    config a task's dataloader may be ``dict(from_config=<path>,
    **changes)``, the ``train_dataloader`` of that single-task config,
    which ``TaskConfigRunner`` resolves when the runner is built (this loop
    receives the plain dict and refuses an unresolved reference;
    :mod:`glid_mm.utils.gppf_task_configs`). A resumed run continues the
    same task draws; the task dataloaders restart.

    With several processes drawing their tasks (``'per_process'``), a task
    model whose training runs a collective (mmdet's DETR / Mask2Former /
    FCOS heads all-reduce their normalisers) is refused when the loop is built:
    it would pair with another task's collectives
    (:mod:`glid_mm.engine.loops.task_collectives`).

    Args:
        runner (Runner): The runner.
        dataloader (dict[str, dict | DataLoader]): Task -> dataloader (a
            config, a task-config reference or a built one).
        max_iters (int): Total iterations.
        task_weights (dict[str, float]): Task -> sampling weight (> 0), the
            same task names as ``dataloader``.
        seed (int, optional): Task-sampling seed. Defaults to the runner's
            seed.
        val_begin (int): Iteration that begins validating. Defaults to 1.
        val_interval (int): Validation interval. Defaults to 1000.
        dynamic_intervals (list[tuple[int, int]], optional): As in
            ``IterBasedTrainLoop``. Defaults to None.
        task_sampling (str): ``'per_process'`` (SIMT: each process draws
            its task) or ``'per_iteration'`` (Table 1's per-batch task
            sampling: all processes run one shared task per iteration).
            Defaults to ``'per_process'``.
    """

    def __init__(self,
                 runner,
                 dataloader: Dict[str, Union[dict, DataLoader]],
                 max_iters: int,
                 task_weights: Dict[str, float],
                 seed: Optional[int] = None,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None,
                 task_sampling: str = 'per_process') -> None:
        self._runner = runner
        if not isinstance(max_iters, int) or max_iters < 1:
            raise ValueError(f'SIMTTrainLoop.max_iters must be a positive '
                             f'int, got {max_iters!r}')
        if not isinstance(dataloader, dict) or not dataloader or any(
                key in dataloader
                for key in ('dataset', 'batch_size', 'sampler')):
            got = list(dataloader) if isinstance(dataloader,
                                                 dict) else dataloader
            raise ValueError(
                f'SIMTTrainLoop needs train_dataloader = dict(<task>='
                f'<dataloader config>, ...), one per task; got {got!r}')
        if not isinstance(task_weights, dict):
            raise TypeError(f'task_weights must be a dict task -> weight, '
                            f'got {task_weights!r}')
        if set(task_weights) != set(dataloader):
            raise KeyError(f'task_weights names {sorted(task_weights)} but '
                           f'train_dataloader names {sorted(dataloader)}; '
                           f'they must match')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model_tasks = getattr(model, 'tasks', None)
        if model_tasks is None:
            raise TypeError(f'SIMTTrainLoop needs a multi-task model with a '
                            f'`tasks` dict (GPPFMultiTaskModel), got '
                            f'{type(model).__name__}')
        unknown = sorted(set(dataloader) - set(model_tasks))
        if unknown:
            raise KeyError(f'unknown task(s) {unknown} in train_dataloader; '
                           f'the model has tasks {list(model_tasks)}')
        if task_sampling not in ('per_process', 'per_iteration'):
            raise ValueError("SIMTTrainLoop.task_sampling must be "
                             "'per_process' or 'per_iteration', got "
                             f'{task_sampling!r}')
        if runner.world_size > 1 and task_sampling == 'per_process':
            _refuse_collectives(model_tasks, dataloader, runner.world_size)
        if runner.world_size > 1 and not isinstance(runner.model,
                                                    SIMTDistributedWrapper):
            raise TypeError(
                f'distributed SIMT needs model_wrapper_cfg=dict(type='
                f'"SIMTDistributedWrapper"), got {type(runner.model).__name__}'
                f' (DDP would average gradients over all processes)')
        # one base seed on every process (runner.seed may differ per rank
        # with diff_rank_seed); the rank makes each process's stream its own
        seed = [runner.seed if seed is None else seed]
        broadcast_object_list(seed, src=0)
        self.sampler = TaskSampler(
            task_weights,
            seed=seed[0],
            rank=runner.rank,
            per_process=task_sampling == 'per_process')

        scopes = getattr(model, 'task_scopes', {})
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        loaders = {}
        for name, cfg in dataloader.items():
            if isinstance(cfg, DataLoader):
                loaders[name] = cfg
                continue
            refuse_task_config_ref(cfg, f'train_dataloader.{name}')
            with DefaultScope.overwrite_default_scope(scopes.get(name)):
                loaders[name] = runner.build_dataloader(
                    cfg, seed=runner.seed, diff_rank_seed=diff_rank_seed)
        self.dataloader = MultiTaskDataLoaders(loaders)
        self.iterators = {
            name: _InfiniteDataloaderIterator(loader)
            for name, loader in loaders.items()
        }
        self._max_iters = max_iters
        self._max_epochs = 1
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        self.current_task: Optional[str] = None
        self.dynamic_milestones, self.dynamic_intervals = \
            calc_dynamic_intervals(self.val_interval, dynamic_intervals)

    @property
    def max_epochs(self) -> int:
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        return self._max_iters

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def iter(self) -> int:
        return self._iter

    def run(self):
        """Launch training (as ``IterBasedTrainLoop.run``)."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            print_log(
                f'SIMT resumes at iteration {self._iter}: task draws continue '
                f'the same sequence; the task dataloaders restart',
                logger='current',
                level=logging.WARNING)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            task = self.sampler.sample(self._iter)
            data_batch = next(self.iterators[task])
            for sample in data_batch['data_samples']:
                sample.set_metainfo(dict(task=task))
            self.run_iter(task, data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_iter(self, task: str, data_batch: dict) -> None:
        """One iteration of ``task`` on this process."""
        self.current_task = task
        hub = self.runner.message_hub
        hub.update_info('simt_task', task)
        # processes per task this iteration (logged as simt.<task>)
        tasks = [
            self.sampler.sample(self._iter, rank)
            for rank in range(self.runner.world_size)
        ]
        for name in self.sampler.tasks:
            hub.update_scalar(f'train/simt.{name}', tasks.count(name))
        self.runner.call_hook(
            'before_train_iter', batch_idx=self._iter, data_batch=data_batch)
        outputs = self.runner.model.train_step(
            data_batch, optim_wrapper=self.runner.optim_wrapper)
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=self._iter,
            data_batch=data_batch,
            outputs=outputs)
        self._iter += 1

    def _decide_current_val_interval(self) -> None:
        step = bisect.bisect(self.dynamic_milestones, (self._iter + 1))
        self.val_interval = self.dynamic_intervals[step - 1]


__all__ = ['SIMTTrainLoop', 'MultiTaskDataLoaders']
