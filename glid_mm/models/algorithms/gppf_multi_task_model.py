"""GPPF multi-task model: toolbox task models sharing one lego backbone."""
import contextlib
import copy
from contextlib import nullcontext
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.dist import get_dist_info
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import DefaultScope

from glid_mm.models.backbones.gppf_backbone_slot import SharedBackboneSlot
from glid_mm.models.layers.gppf_cross_task_sync_bn import CrossTaskSyncBN
from glid_mm.registry import MODELS, build_model, build_nested
from glid_mm.utils.gppf_task_configs import refuse_task_config_ref


def task_of(data_samples: Optional[Sequence]) -> str:
    """The task named by ``data_samples[i].metainfo['task']`` (one per batch).

    Raises ``ValueError`` when it is missing or differs within the batch.
    """
    if not data_samples:
        raise ValueError('GPPF needs data samples carrying metainfo["task"] '
                         '(SIMTTrainLoop stamps them); got none')
    tasks = {s.metainfo.get('task') for s in data_samples}
    if None in tasks:
        raise ValueError('a data sample has no metainfo["task"]; batches for '
                         'GPPFMultiTaskModel must name their task')
    if len(tasks) != 1:
        raise ValueError(f'one batch mixes tasks {sorted(tasks)}; SIMT runs '
                         f'one task per process and iteration')
    return tasks.pop()


class _TaskDataPreprocessor(BaseDataPreprocessor):
    """Runs the data preprocessor of the task the batch belongs to.

    Holds a resolver function, not the task preprocessors, so they stay
    submodules of their own task models only.
    """

    def __init__(self, resolve) -> None:
        super().__init__()
        self._resolve = resolve

    def forward(self, data: dict, training: bool = False) -> dict:
        return self._resolve(task_of(data.get('data_samples')))(data, training)


def _settings(module: nn.Module) -> dict:
    """What makes one module compute otherwise than another of its type
    and shapes: its ``extra_repr()`` (eps, momentum, kernel, ...) and its
    plain scalar attributes (``drop_prob``, ``with_cp``, ...)."""
    out = {'extra_repr': module.extra_repr()}
    for key, value in vars(module).items():
        if not key.startswith('_') and key != 'training' and isinstance(
                value, (bool, int, float, str, type(None))):
            out[key] = value
    return out


def _structure_diff(a: nn.Module, b: nn.Module) -> str:
    """'' when ``a`` and ``b`` have the same submodule types, settings
    (:func:`_settings`) and parameter / buffer names and shapes, else the
    first difference."""
    types_a = [(n, type(m).__name__) for n, m in a.named_modules()]
    types_b = [(n, type(m).__name__) for n, m in b.named_modules()]
    if types_a != types_b:
        for x, y in zip(types_a + [None], types_b + [None]):
            if x != y:
                return f'submodule {x} vs {y}'
    for (name, ma), mb in zip(a.named_modules(), b.modules()):
        sa, sb = _settings(ma), _settings(mb)
        for key in sorted(set(sa) | set(sb)):
            if sa.get(key) != sb.get(key):
                return (f'{name or "(top)"}.{key}: {sa.get(key)!r} vs '
                        f'{sb.get(key)!r}')
    shapes_a = {k: tuple(v.shape) for k, v in a.state_dict().items()}
    shapes_b = {k: tuple(v.shape) for k, v in b.state_dict().items()}
    for key in sorted(set(shapes_a) | set(shapes_b)):
        if shapes_a.get(key) != shapes_b.get(key):
            return (f'{key}: {shapes_a.get(key, "absent")} vs '
                    f'{shapes_b.get(key, "absent")}')
    return ''


def _is_sync_bn(module: nn.Module) -> bool:
    return isinstance(module, (nn.SyncBatchNorm, CrossTaskSyncBN)) or \
        type(module).__name__ == 'SyncBatchNorm'


@MODELS.register_module(scopes=('mmdet', 'mmseg', 'mmpretrain'))
class GPPFMultiTaskModel(BaseModel):
    """Task models of different toolboxes sharing one backbone (GPPF).

    GPPF Sec. 3.2: task ``t = (D_t, alg_t)`` with ``alg_t = (pre_t, net_t,
    loss_t)``; the backbone is the shared part of all ``net_t``. Each entry
    of ``tasks`` is a complete stock model config (mmdet ``MaskRCNN``, mmseg
    ``EncoderDecoder``, mmpretrain ``ImageClassifier`` ...) without a
    backbone, carrying its toolbox in mmengine's ``_scope_`` key; it keeps
    its own data preprocessor, neck, heads and losses, unchanged.

    Sharing is by module identity: the backbone is a registered submodule
    of this model only, and each task model's ``backbone`` attribute is a
    plain reference to the same object. The state dict therefore stores it
    once (``backbone.*``), the optimizer and the SIMT gradient averaging see
    each parameter once, and ``.to()`` / ``.train()`` reach it through this
    model.

    The batch's task comes from ``data_samples[i].metainfo['task']``
    (:class:`SIMTTrainLoop` stamps it). The data preprocessor, the task
    model and the backbone's task context
    (``with backbone.using_task(task)``, see :class:`LegoResNet`) follow it,
    so mmengine's stock ``train_step`` / ``val_step`` / ``test_step`` work.
    Loss keys are prefixed with the task (``det.loss_cls``), as mmseg
    prefixes ``decode.loss_ce``, and multiplied by ``loss_weights[task]``
    (the paper's ``w_t``, 1.0 for all tasks).

    ``shared_parts`` shares more than the backbone: the named submodules
    of the task models (dotted paths; for GLID's generalist ``('neck',
    'decoder.input_proj', 'decoder.level_embed', 'decoder.layers')``: the
    Bi-FPN and the query decoder without its queries, whose count is the
    task's - 17 keypoints for pose, 300 + 1,500 for detection - while GLID
    Sec. 4 otherwise keeps all but the top linear head shared) are built
    by each task model from its own config, checked to have one structure
    (the same submodule types, settings such as BN momentum or drop path,
    and parameter / buffer names and shapes: :func:`_structure_diff`), and
    replaced by the first task's module, registered here once under the
    same path (``neck.*``, ``decoder.layers.*``) as the backbone is. Only
    the heads stay per task (``tasks.<task>.*``; a checkpoint's single
    copy of a per-task key, e.g. the pre-trained
    ``decoder.queries.cls_token``, loads into every task:
    :meth:`_to_every_task`), so the SIMT gradient average
    (:func:`task_average_gradients`) averages a shared parameter over
    every process and a head's over the processes of its task.

    Under several processes, the task model's loss runs within the
    ``local_normalisers()`` context of every submodule that has one
    (:class:`GLIDMaskHead`, :class:`GLIDDETRHead`): mmdet's Mask2Former and
    DETR heads all-reduce their loss normalisers, which would pair with
    another task's collectives when processes run different tasks.

    Task-specific parts must not use SyncBN: only the processes that sampled
    a task run its head, so a head's SyncBN would wait for the others
    forever. Only the shared parts synchronise (:class:`CrossTaskSyncBN`).

    Args:
        backbone (dict): Config of the shared backbone (e.g.
            :class:`LegoResNet` with ``task_names`` covering ``tasks``).
        tasks (dict[str, dict]): Task name -> model config (no
            ``backbone``; ``_scope_`` names its toolbox, default the current
            scope). A config may name a single-task config instead,
            ``dict(from_config=<path>, **changes)``; ``TaskConfigRunner``
            replaces it by that config's model (without ``backbone``,
            ``_scope_`` its ``default_scope``) when the runner is built
            (:mod:`glid_mm.utils.gppf_task_configs`); an unresolved
            reference here is refused.
        loss_weights (dict[str, float], optional): Task -> ``w_t > 0``.
            Defaults to 1.0 for every task (Sec. 3.2).
        shared_parts (Sequence[str]): Task-model attributes shared besides
            the backbone (see above). Defaults to ``()``: the backbone
            only (GPPF).
        data_preprocessor: Must be None (each task has its own).
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 tasks: Dict[str, dict],
                 loss_weights: Optional[Dict[str, float]] = None,
                 shared_parts: Sequence[str] = (),
                 data_preprocessor=None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is not None:
            raise ValueError('GPPFMultiTaskModel takes no data_preprocessor: '
                             'each task model in `tasks` brings its own')
        super().__init__(
            data_preprocessor=_TaskDataPreprocessor(self._preprocessor_for),
            init_cfg=init_cfg)
        if not isinstance(tasks, dict) or not tasks:
            raise ValueError(f'tasks must be a non-empty dict of task name '
                             f'-> model config, got {tasks!r}')
        self.backbone = build_model(backbone)
        known = getattr(self.backbone, 'task_names', None)
        if known is not None:
            missing = sorted(set(tasks) - set(known))
            if missing:
                raise KeyError(f'tasks {missing} have no controller in the '
                               f'backbone (task_names={list(known)})')
        shared_parts = tuple(shared_parts)
        reserved = {'backbone', 'tasks', 'data_preprocessor'}
        bad = [
            p for p in shared_parts if not isinstance(p, str) or not all(
                s.isidentifier()
                for s in p.split('.')) or p.split('.')[0] in reserved
        ]
        nested = [(a, b) for a in shared_parts for b in shared_parts
                  if a != b and str(b).startswith(f'{a}.')]
        repeated = sorted(
            {p
             for p in shared_parts if shared_parts.count(p) > 1}, key=str)
        if bad or nested or repeated:
            raise ValueError(
                f'shared_parts must be distinct dotted task-model submodule '
                f'paths, none inside another, not under '
                f'{sorted(reserved)}; got {shared_parts!r}: ' +
                '; '.join(([f'not a path or reserved: {bad}'] if bad else []) +
                          ([f'inside another: {nested}'] if nested else []) +
                          ([f'repeated: {repeated}'] if repeated else [])))
        current = DefaultScope.get_current_instance()
        self.task_scopes: Dict[str, Optional[str]] = {}
        self.tasks = nn.ModuleDict()
        for name, cfg in tasks.items():
            self.tasks[name] = self._build_task(name, cfg, current,
                                                shared_parts)
        for part in shared_parts:
            self._share(part)
        self.shared_parts = shared_parts
        self._register_load_state_dict_pre_hook(self._to_every_task)

        loss_weights = dict(loss_weights or {})
        unknown = sorted(set(loss_weights) - set(tasks))
        if unknown:
            raise KeyError(f'loss_weights names unknown tasks {unknown}; '
                           f'tasks: {list(tasks)}')
        for name, weight in loss_weights.items():
            if not float(weight) > 0:
                raise ValueError(f'loss_weights[{name!r}] must be > 0, got '
                                 f'{weight!r}')
        self.loss_weights = {
            name: float(loss_weights.get(name, 1.0))
            for name in tasks
        }

    def _to_every_task(self, state_dict, prefix, *args) -> None:
        """Load pre-hook: a single-task key that this model holds per task
        loads into every task that has it with the same shape.

        A GLID pre-training (or single-task) checkpoint has one
        ``decoder.queries.cls_token``; the generalist keeps the queries per
        task (``tasks.<task>.decoder.queries.cls_token``), and every task
        starts from the pre-trained [CLS] as its single-task fine-tuning
        does (GLID eq. 3: queries ``[CLS] + e_i``). Keys this model has as
        they are (shared parts), keys under ``tasks.`` and keys no task
        has with that shape (``decoder.queries.mask_token``, another
        task's ``query_embed``) are left alone.
        """
        own = {k: v.shape for k, v in self.state_dict(keep_vars=True).items()}
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rel = key[len(prefix):]
            if rel in own or rel.startswith('tasks.'):
                continue
            value = state_dict[key]
            targets = [
                f'tasks.{task}.{rel}' for task in self.tasks
                if own.get(f'tasks.{task}.{rel}') == getattr(
                    value, 'shape', None) and prefix +
                f'tasks.{task}.{rel}' not in state_dict
            ]
            for target in targets:
                state_dict[prefix + target] = value
            if targets:
                del state_dict[key]

    @staticmethod
    def _locate(model: nn.Module, path: str, task: str):
        """``(parent, leaf name, module)`` of the dotted ``path`` in a task
        model; a missing step is an error naming the task and the path."""
        *steps, leaf = path.split('.')
        parent = model
        for step in steps:
            parent = parent._modules.get(step)
            if parent is None:
                break
        module = None if parent is None else parent._modules.get(leaf)
        if not isinstance(module, nn.Module):
            raise KeyError(
                f'shared_parts names {path!r}, but tasks[{task!r}] '
                f'({type(model).__name__}) has no submodule {path!r}')
        return parent, leaf, module

    def _share(self, path: str) -> None:
        """Replace every task model's submodule ``path`` by the first
        task's, after checking that they have one structure; register it
        here under the same path."""
        found = {
            name: self._locate(model, path, name)
            for name, model in self.tasks.items()
        }
        (first, (_, _, shared)), *others = found.items()
        for name, (_, _, module) in others:
            diff = _structure_diff(shared, module)
            if diff:
                raise ValueError(
                    f'shared_parts: {path!r} of tasks[{name!r}] differs from '
                    f'that of tasks[{first!r}] ({diff}); give the tasks one '
                    f'config for it (e.g. in the task changes next to '
                    f'from_config)')
        for parent, leaf, _ in found.values():
            # a plain reference, not a submodule (as the backbone)
            del parent._modules[leaf]
            object.__setattr__(parent, leaf, shared)
        *steps, leaf = path.split('.')
        holder = self
        for step in steps:  # plain containers keep the single-task names
            if step not in holder._modules:
                holder.add_module(step, nn.Module())
            holder = holder._modules[step]
        holder.add_module(leaf, shared)

    def _build_task(self,
                    name: str,
                    cfg: dict,
                    current,
                    shared_parts: Sequence[str] = ()) -> nn.Module:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f'task names must be identifiers, got {name!r}')
        refuse_task_config_ref(cfg, f'model.tasks.{name}')
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise TypeError(f'tasks[{name!r}] must be a model config dict '
                            f'with a type, got {cfg!r}')
        # ConfigDict as under a runner (mmseg reads test_cfg.mode etc.)
        cfg = ConfigDict(copy.deepcopy(cfg))
        if cfg.get('backbone') is not None:
            raise ValueError(
                f'tasks[{name!r}] defines its own backbone; GPPF tasks share '
                f'GPPFMultiTaskModel.backbone (drop it from the task config)')
        if cfg.get('pretrained') is not None:
            raise ValueError(
                f'tasks[{name!r}].pretrained would load into the shared '
                f'backbone; set pretrained=None and init the backbone (or '
                f'load_from) instead')
        scope = cfg.get('_scope_') or (current.scope_name
                                       if current is not None else None)
        if scope is None:
            raise ValueError(f'tasks[{name!r}] needs _scope_ (mmdet, mmseg, '
                             f'mmpretrain ...) outside a default scope')
        cfg['_scope_'] = scope
        cfg['backbone'] = dict(type='SharedBackboneSlot')
        model = build_nested(cfg)
        slot = getattr(model, 'backbone', None)
        if not isinstance(slot, SharedBackboneSlot):
            raise TypeError(f'tasks[{name!r}] ({type(model).__name__}) has '
                            f'no backbone attribute to share')
        # a plain reference, not a submodule (see the class docstring)
        del model._modules['backbone']
        object.__setattr__(model, 'backbone', self.backbone)
        for part in shared_parts:
            self._locate(model, part, name)  # a clear error if absent
        sync = [
            n for n, m in model.named_modules()
            if _is_sync_bn(m) and not any(n == p or n.startswith(f'{p}.')
                                          for p in shared_parts)
        ]
        if sync:
            raise ValueError(
                f'tasks[{name!r}] uses SyncBN in {sync[:3]}: only processes '
                f'running this task would join its all-reduce, so SIMT '
                f'would hang. Use norm_cfg=dict(type="BN") in task heads; '
                f'only the shared backbone and shared_parts synchronise '
                f'(CrossTaskSyncBN)')
        self.task_scopes[name] = scope
        return model

    def _preprocessor_for(self, task: str) -> BaseDataPreprocessor:
        self._check_task(task)
        return self.tasks[task].data_preprocessor

    def _check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise KeyError(f'unknown task {task!r}; GPPFMultiTaskModel has '
                           f'tasks {list(self.tasks)}')

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor',
                task: Optional[str] = None):
        """Run the batch's task model (``inputs: [B, C, H, W]``).

        ``task`` defaults to the data samples' ``metainfo['task']``; give it
        for ``mode='tensor'`` without data samples.
        """
        if task is None:
            task = task_of(data_samples)
        self._check_task(task)
        context = self.backbone.using_task(task) if hasattr(
            self.backbone, 'using_task') else nullcontext()
        with context, contextlib.ExitStack() as local:
            if mode == 'loss' and get_dist_info()[1] > 1:
                # SIMT: other processes may run other tasks, so a task
                # head's loss normaliser must not be an all-reduce
                for module in self.tasks[task].modules():
                    if hasattr(module, 'local_normalisers'):
                        local.enter_context(module.local_normalisers())
            out = self.tasks[task](inputs, data_samples, mode)
        if mode != 'loss':
            return out
        weight = self.loss_weights[task]
        losses = {}
        for key, value in out.items():
            if 'loss' in key and weight != 1.0:
                value = [v * weight for v in value] if isinstance(
                    value, (list, tuple)) else value * weight
            losses[f'{task}.{key}'] = value
        return losses
