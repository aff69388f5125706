"""Command-line entry points behind ``tools/train.py`` and ``tools/test.py``.

They work for configs of any of the four toolboxes: the config's
``default_scope`` picks the registries, exactly as in each toolbox's own
``tools/train.py``. ``import glid_mm`` (done here) registers our components,
so configs do not even need ``custom_imports``.

Before anything runs they check the inputs and fail naming the culprit:
data roots (:func:`~glid_mm.utils.data_root.check_data_roots`), annotation
files and multi-task names (:mod:`glid_mm.utils.data_checks`; opt out with
``data_check = False``), and, once the runner is built, that the training
set is not empty and that the ``load_from`` checkpoint fits the model
(:func:`check_load_from`; opt out with ``load_from_check = False``).
"""
import argparse
import logging
import os
import os.path as osp
import re
from collections import OrderedDict
from functools import partial
from typing import Callable, Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from glid_mm.utils.data_checks import check_annotations, check_tasks
from glid_mm.utils.data_root import check_data_roots
from glid_mm.utils.errors import explain_registry_error, explain_unpickling_error
from glid_mm.models.converters.glid_pretrain_to_finetune import PARTS, part_of


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='dir to save logs and checkpoints')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. '
        'train_dataloader.batch_size=2 model.backbone.depth=18')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch>=2) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def _load_cfg(args) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return cfg


def _add_reliability_defaults(cfg: Config) -> None:
    """Atomic checkpoint writes and a stop at the first non-finite loss.

    Both are defaults only: a checkpoint hook that names its own backend
    keeps it, and ``custom_hooks=[dict(type='FiniteLossHook',
    enabled=False)]`` restores mmengine's keep-training behaviour.
    """
    ckpt_hook = cfg.get('default_hooks', {}).get('checkpoint')
    if ckpt_hook is not None and not ckpt_hook.get('backend_args') and \
            not ckpt_hook.get('file_client_args') and \
            not str(ckpt_hook.get('out_dir') or '').count('://'):
        ckpt_hook.backend_args = dict(backend='atomic_local')
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') in ('FiniteLossHook', 'glid_mm.FiniteLossHook')
               for h in hooks):
        hooks.append(dict(type='FiniteLossHook'))
    cfg.custom_hooks = hooks


def _run(cfg: Config, action: str,
         check: Optional[Callable[[Runner, Config], None]] = None):
    """Build the runner, ``check`` it, run ``action``; explain failures."""
    try:
        runner = _build_runner(cfg)
        if check is not None:
            check(runner, cfg)
        return runner, getattr(runner, action)()
    except KeyError as exc:
        better = explain_registry_error(exc)
        if better is None:
            raise
        raise better from exc
    except Exception as exc:
        better = explain_unpickling_error(exc, cfg.get('load_from'))
        if better is None:
            raise
        raise better from exc


def _init_cpu_process_group(cfg: Config) -> None:
    """Distributed launch on a machine without GPUs (gloo, no device ids).

    mmengine 0.10's pytorch launcher calls ``torch.cuda.set_device`` and so
    fails without a GPU, and its default DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``, which DDP refuses for CPU modules. On a
    machine without CUDA this initialises the process group itself (the
    runner finds it initialised and skips its own ``init_dist``) with
    ``gloo``, whatever ``env_cfg.dist_cfg.backend`` says (``nccl`` cannot
    run there; a warning names the switch), and makes the DDP wrapper
    CPU-ready (:func:`_cpu_model_wrapper`). So any config launches on CPU
    processes with ``tools/dist_train.sh CONFIG N`` without config
    surgery.
    """
    import datetime
    import warnings

    import torch
    import torch.distributed as dist
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        if cfg.launcher != 'pytorch':
            raise RuntimeError(
                f'--launcher {cfg.launcher} needs GPUs; on a machine '
                'without GPUs use tools/dist_train.sh (--launcher pytorch)')
        env_cfg = cfg.setdefault('env_cfg', {})
        dist_cfg = dict(env_cfg.get('dist_cfg', {}) or {})
        backend = dist_cfg.pop('backend', 'gloo')
        if backend != 'gloo':
            warnings.warn(
                f'env_cfg.dist_cfg.backend={backend!r} needs GPUs and this '
                'machine has none: using "gloo" (CPU processes)')
            env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        timeout = dist_cfg.pop('timeout', None)
        if timeout is not None:
            dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
        dist.init_process_group(backend='gloo', **dist_cfg)
    _cpu_model_wrapper(cfg)


def _cpu_model_wrapper(cfg: Config) -> None:
    """DDP for CPU processes: :class:`GlooDistributedDataParallel` in place
    of mmengine's default wrapper (``device_ids=None``, SyncBN made
    gloo-capable), with mmengine's defaults (``broadcast_buffers=False``,
    ``find_unused_parameters`` from the config); another DDP subclass named
    by the config gets ``device_ids=None``; other wrappers are kept."""
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='GlooDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        return
    wrapper_type = wrapper.get('type', 'MMDistributedDataParallel')
    if wrapper_type in ('MMDistributedDataParallel',
                        'mmengine.MMDistributedDataParallel'):
        wrapper.type = 'GlooDistributedDataParallel'
        wrapper.device_ids = None
        return
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if isinstance(wrapper_type, type) and \
            issubclass(wrapper_type, DistributedDataParallel):
        wrapper['device_ids'] = None


def _build_runner(cfg: Config) -> Runner:
    _init_cpu_process_group(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    from mmengine.registry import RUNNERS
    return RUNNERS.build(cfg)


class CheckpointMismatchError(ValueError):
    """A ``load_from`` checkpoint that does not fit the model."""


class _Mute(logging.Filter):

    def filter(self, record) -> bool:
        return False


def _own_tensors(module: nn.Module) -> Dict[str, torch.Tensor]:
    """A module's direct parameters and persistent buffers."""
    own = {n: t for n, t in module._parameters.items() if t is not None}
    own.update({
        n: t
        for n, t in module._buffers.items()
        if t is not None and n not in module._non_persistent_buffers_set
    })
    return own


def load_from_report(model: nn.Module, state: Dict,
                     who: str = 'the checkpoint') -> Dict[str, list]:
    """What mmengine's non-strict ``load_state_dict`` would do, unloaded.

    It walks the modules as mmengine's loader does (each child sees the
    keys under its prefix) and runs the modules' load-state-dict pre-hooks
    on a shallow copy first, so what they fix counts as fitting: mmpretrain
    resizes Swin relative-position tables and ViT/Swin position embeddings
    there, mmpose renames old head keys. BatchNorm's ``num_batches_tracked``
    counters are left out (they always fit and carry no weights). The model
    is not touched.

    Args:
        model (nn.Module): The built model, unwrapped.
        state (dict): The checkpoint's state dict.
        who (str): The checkpoint in messages.

    Returns:
        dict: ``matched``, ``missing``, ``unexpected`` (key lists) and
        ``mismatch`` (``(key, checkpoint shape, model shape)``).

    Raises:
        CheckpointMismatchError: A pre-hook fails on this checkpoint (the
            real load would fail there too), naming the hook and module.
    """
    from mmengine.logging import MMLogger
    from mmengine.model import is_model_wrapper
    metadata = getattr(state, '_metadata', None)
    out = dict(matched=[], mismatch=[], missing=[], unexpected=[])

    def visit(module, local, prefix):
        if is_model_wrapper(module):
            module = module.module
        meta = {} if metadata is None else metadata.get(prefix[:-1], {})
        for hook in module._load_state_dict_pre_hooks.values():
            try:
                hook(local, prefix, meta, True, [], [], [])
            except Exception as exc:
                func = getattr(hook, 'hook', hook)
                raise CheckpointMismatchError(
                    f'{who}: the load-state-dict hook '
                    f'{getattr(func, "__qualname__", func)} of '
                    f'{prefix[:-1] or "the model"} ({type(module).__name__}'
                    f') fails on it, so mmengine\'s load_from would fail '
                    f'there too: {type(exc).__name__}: {exc}') from exc
        own = _own_tensors(module)
        for attr, tensor in own.items():
            key = prefix + attr
            if attr == 'num_batches_tracked':
                continue  # a step count, not a weight: it always "fits"
            if key not in local:
                out['missing'].append(key)
            elif tuple(local[key].shape) != tuple(tensor.shape):
                out['mismatch'].append(
                    (key, tuple(local[key].shape), tuple(tensor.shape)))
            else:
                out['matched'].append(key)
        for key in local:
            if key.startswith(prefix) and \
                    not key.endswith('.num_batches_tracked'):
                head, *rest = key[len(prefix):].split('.', 1)
                if head not in (module._modules if rest else own):
                    out['unexpected'].append(key)
        for child_name, child in module._modules.items():
            if child is not None:
                sub = prefix + child_name + '.'
                visit(child, {k: v
                              for k, v in local.items() if k.startswith(sub)},
                      sub)

    logger, mute = MMLogger.get_current_instance(), _Mute()
    logger.addFilter(mute)  # the hooks log again in the real load
    try:
        visit(model, OrderedDict(state), '')
    finally:
        logger.removeFilter(mute)
    return out


def format_load_report(report: Dict[str, list]) -> str:
    """One line of counts, then one per model part with a few keys each."""
    names = ('matched', 'mismatch', 'missing', 'unexpected')
    words = dict(mismatch='shape mismatches')
    lines = [', '.join(f'{len(report[n])} {words.get(n, n)}' for n in names)]
    for part in PARTS:
        cells = []
        for name in names:
            keys = [k for k in report[name]
                    if part_of(k[0] if name == 'mismatch' else k) == part]
            if not keys:
                continue
            shown = [f'{k}: checkpoint {c} vs model {m}'
                     for k, c, m in keys[:3]] if name == 'mismatch' else (
                         keys[:3])
            more = ', ...' if len(keys) > 3 else ''
            cells.append(f'{len(keys)} {words.get(name, name)}' + (
                '' if name == 'matched' else f' ({", ".join(shown)}{more})'))
        if cells:
            lines.append(f'  {part}: ' + '; '.join(cells))
    return '\n'.join(lines)


def _tensors(state) -> 'OrderedDict':
    """Tensors of a state dict, ``module.`` stripped as mmengine does."""
    out = OrderedDict((re.sub(r'^module\.', '', k), v)
                      for k, v in state.items() if isinstance(v, torch.Tensor))
    out._metadata = getattr(state, '_metadata', None)
    return out


def check_load_from(model: nn.Module, checkpoint: Union[str, dict],
                    name: Optional[str] = None) -> str:
    """Compare a ``load_from`` checkpoint with the built model.

    mmengine reads ``checkpoint['state_dict']`` (or the whole dict) and
    loads non-strictly, so a checkpoint of another architecture "loads"
    with warnings only. Fatal here: no model tensor matches by name and
    shape; shape mismatches outnumber matches; the checkpoint has backbone
    tensors and the model too but none matches (the backbone would stay
    random); or the weights sit under ``'model'`` (timm / official
    releases), which mmengine does not read. Missing and unexpected keys
    alone are fine: a GLID pre-training checkpoint has a head and mask
    tokens the fine-tuning model lacks, and a backbone-only checkpoint
    (GLID Table 4) lacks the rest.

    Args:
        model (nn.Module): The built model, unwrapped.
        checkpoint (str | dict): A file (any mmengine checkpoint path or
            URL) or a loaded checkpoint.
        name (str, optional): The checkpoint's name in messages. Defaults
            to the file name.

    Returns:
        str: The per-part report (:func:`format_load_report`), to log.

    Raises:
        CheckpointMismatchError: With the report and the opt-out.
    """
    if isinstance(checkpoint, str):
        from mmengine.runner.checkpoint import _load_checkpoint
        name = name or checkpoint
        checkpoint = _load_checkpoint(checkpoint, map_location='cpu')
    who = f'load_from={name}' if name else 'the checkpoint'
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'{who} holds a {type(checkpoint).__name__}, not a state dict')
    state = _tensors(checkpoint.get('state_dict', checkpoint))
    target = type(model).__name__
    hint = ('\nIf this is intended, set load_from_check = False in the '
            'config (--cfg-options load_from_check=False).')
    if not state and isinstance(checkpoint.get('model'), dict):
        text = format_load_report(
            load_from_report(model, _tensors(checkpoint['model']), who))
        raise CheckpointMismatchError(
            f'{who} keeps its tensors under "model", which '
            f'mmengine\'s load_from does not read (it reads "state_dict" '
            f'or a plain state dict): nothing would load into {target}. '
            f'Re-save it as {{"state_dict": ckpt["model"]}} (or with the '
            f'toolbox\'s model converter). Against the model it would '
            f'give:\n{text}{hint}')
    if not state:
        raise CheckpointMismatchError(
            f'{who} holds no tensors at its top level or under '
            f'"state_dict" (keys: {sorted(checkpoint)[:10]}){hint}')
    report = load_from_report(model, state, who)
    text = format_load_report(report)
    matched, mismatch = len(report['matched']), len(report['mismatch'])
    backbone = [any(part_of(k if isinstance(k, str) else k[0]) == 'backbone'
                    for k in report[n])
                for n in ('matched', 'mismatch', 'missing', 'unexpected')]
    reason = None
    if matched == 0:
        reason = (f'none of its {len(state)} tensors matches a model tensor '
                  'by name and shape')
    elif mismatch > matched:
        reason = (f'{mismatch} tensors have another shape in the model, more '
                  f'than the {matched} that match')
    elif not backbone[0] and (backbone[1] or backbone[3]) and \
            (backbone[1] or backbone[2]):
        reason = ('none of its backbone tensors matches the model\'s '
                  'backbone by name and shape')
    if reason is not None:
        raise CheckpointMismatchError(
            f'{who} does not fit {target}: {reason} (mmengine '
            f'would load it non-strictly and only log warnings). '
            f'Checkpoint vs model:\n{text}{hint}')
    return text


def parse_train_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a model of mmdet/mmseg/mmpose/mmpretrain (with '
        'glid_mm components registered)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by total batch / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint in the work dir')
    _common_args(parser)
    return parser.parse_args(argv)


def build_train_cfg(args: argparse.Namespace) -> Config:
    """Apply the command-line options to the config, as mmdet does."""
    cfg = _load_cfg(args)
    if args.amp:
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type == 'AmpOptimWrapper':
            print('AMP is already enabled in the config.')
        elif optim_type != 'OptimWrapper':
            raise ValueError(
                f'--amp needs optim_wrapper.type OptimWrapper, got '
                f'{optim_type!r} in {args.config}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr') or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError(f'--auto-scale-lr needs auto_scale_lr.'
                           f'base_batch_size in {args.config}')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: '
                                    f'{args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    _add_reliability_defaults(cfg)
    return cfg


def _check_built_runner(runner: Runner, cfg: Config,
                        train: bool = True) -> None:
    """Checks that need the built model or datasets (before any step).

    The training set must not be empty (for GPPF: none of the task sets),
    and ``load_from`` must fit the model (:func:`check_load_from`; the
    per-part report goes to the log). Building ``runner.train_loop`` here
    is what ``runner.train()`` does first anyway.
    """
    from mmengine.model import is_model_wrapper
    loader = getattr(runner.train_loop, 'dataloader', None) if train else None
    if loader is not None:
        loaders = getattr(loader, 'loaders', None) or dict(train=loader)
        for task, task_loader in loaders.items():
            dataset = getattr(task_loader, 'dataset', None)
            if dataset is not None and hasattr(dataset, '__len__') and \
                    len(dataset) == 0:
                where = 'train_dataloader' + (
                    '' if task == 'train' else f'.{task}')
                paths = ', '.join(
                    f'{k}={getattr(dataset, k, None)!r}'
                    for k in ('data_root', 'ann_file', 'data_prefix'))
                raise ValueError(
                    f'{where}: the dataset {type(dataset).__name__} has no '
                    f'samples ({paths}); check the paths, and filter_cfg, '
                    'which may drop every image')
    if cfg.get('resume') or not cfg.get('load_from') or \
            cfg.get('load_from_check', True) is False:
        return
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    text = check_load_from(model, cfg.load_from)
    runner.logger.info(f'load_from={cfg.load_from} vs the model '
                       f'(checkpoint tensors by model part):\n{text}')


def main_train(argv: Optional[List[str]] = None) -> Runner:
    args = parse_train_args(argv)
    cfg = build_train_cfg(args)
    keys = ('train_dataloader', 'val_dataloader')
    check_data_roots(cfg, keys=keys)
    check_annotations(cfg, keys=keys)
    check_tasks(cfg)
    runner, _ = _run(cfg, 'train', _check_built_runner)
    return runner


def parse_test_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a model of mmdet/mmseg/mmpose/'
        'mmpretrain (with glid_mm components registered)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump raw predictions to this pickle file')
    _common_args(parser)
    return parser.parse_args(argv)


def main_test(argv: Optional[List[str]] = None) -> dict:
    args = parse_test_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = _load_cfg(args)
    cfg.load_from = args.checkpoint
    check_data_roots(cfg, keys=('test_dataloader', ))
    check_annotations(cfg, keys=('test_dataloader', ))
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        evaluator = cfg.test_evaluator

        def with_dump(ev, path):
            ev = [ev] if isinstance(ev, dict) else list(ev)
            return ev + [dict(type='DumpResults', out_file_path=path)]

        if isinstance(evaluator, dict) and 'type' not in evaluator:
            # per-task evaluators (GPPF's MultiTaskTestLoop): one file each
            stem = osp.splitext(args.out)[0]
            cfg.test_evaluator = {
                task: with_dump(ev, f'{stem}_{task}.pkl')
                for task, ev in evaluator.items()
            }
        else:
            cfg.test_evaluator = with_dump(evaluator, args.out)
    # the checkpoint is the trained model: it must fit as load_from does
    _, metrics = _run(cfg, 'test', partial(_check_built_runner, train=False))
    return metrics
