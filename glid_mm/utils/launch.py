"""Command-line entry points behind ``tools/train.py`` and ``tools/test.py``.

They work for configs of any of the four toolboxes: the config's
``default_scope`` picks the registries, exactly as in each toolbox's own
``tools/train.py``. ``import glid_mm`` (done here) registers our components,
so configs do not even need ``custom_imports``.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from .data_root import check_data_roots
from .errors import explain_registry_error, explain_unpickling_error


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


def _run(cfg: Config, action: str):
    """Build the runner and run ``action`` with explained failures."""
    try:
        runner = _build_runner(cfg)
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
    """Distributed launch on a machine without GPUs (gloo).

    mmengine 0.10's pytorch launcher calls ``torch.cuda.set_device`` and so
    fails without a GPU. There the process group is initialised here, with
    ``env_cfg.dist_cfg``'s backend (``'gloo'``); the runner finds it
    initialised and skips its own ``init_dist``.
    """
    import datetime

    import torch
    import torch.distributed as dist
    if cfg.get('launcher', 'none') != 'pytorch' or \
            torch.cuda.is_available() or dist.is_initialized():
        return
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}) or {})
    backend = dist_cfg.pop('backend', 'gloo')
    if backend != 'gloo':
        raise RuntimeError(
            f'env_cfg.dist_cfg.backend={backend!r} needs GPUs; this machine '
            f'has none: set it to "gloo" for a CPU launch')
    timeout = dist_cfg.pop('timeout', None)
    if timeout is not None:
        dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
    dist.init_process_group(backend=backend, **dist_cfg)


def _build_runner(cfg: Config) -> Runner:
    _init_cpu_process_group(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    from mmengine.registry import RUNNERS
    return RUNNERS.build(cfg)


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


def main_train(argv: Optional[List[str]] = None) -> Runner:
    args = parse_train_args(argv)
    cfg = build_train_cfg(args)
    check_data_roots(cfg, keys=('train_dataloader', 'val_dataloader'))
    runner, _ = _run(cfg, 'train')
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
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, dict):
            evaluator = [evaluator]
        cfg.test_evaluator = list(evaluator) + [
            dict(type='DumpResults', out_file_path=args.out)
        ]
    _, metrics = _run(cfg, 'test')
    return metrics
