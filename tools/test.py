#!/usr/bin/env python
"""Evaluate a checkpoint on a config of mmdet, mmseg, mmpose or mmpretrain.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out preds.pkl]
        [--show] [--show-dir DIR] [--wait-time S]
        [--cfg-options k=v ...] [--launcher pytorch]

``--show`` / ``--show-dir`` turn on the toolbox's visualization hook
(``default_hooks.visualization``, added if the config has none) as each
toolbox's own ``tools/test.py`` does:

* mmdet ``DetVisualizationHook``: ``draw=True, test_out_dir=DIR``; a relative
  DIR lies under ``WORK_DIR/<timestamp>/`` (the hook joins it);
* mmpose ``PoseVisualizationHook``: ``enable=True, out_dir=DIR``; a relative
  DIR lies under ``WORK_DIR/<timestamp>/`` (the hook joins it);
* mmseg ``SegVisualizationHook``: ``draw=True`` and the visualizer's
  ``save_dir=DIR`` (images in ``DIR/vis_data/vis_image/``; depth predictions,
  ``pred_depth_map``, are drawn below the image); a relative DIR lies under
  ``WORK_DIR/``;
* mmpretrain ``VisualizationHook``: ``enable=True, out_dir=DIR``; a relative
  DIR lies under ``WORK_DIR/``.

The checkpoint must fit the model as ``load_from`` does in training
(:func:`glid_mm.utils.load_check.check_load_from`).
"""
import argparse
import os
import os.path as osp
from functools import partial

from mmengine.config import Config, DictAction

import glid_mm  # noqa: F401  (version guard, safe checkpoints, registries)
from glid_mm.engine.runner import run_checked
from glid_mm.utils.gppf_task_configs import resolve_task_configs
from glid_mm.utils.mim import load_config
from glid_mm.utils.preflight import check_built_runner, check_inputs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a model of mmdet/mmseg/mmpose/'
        'mmpretrain (with glid_mm components registered)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump raw predictions to this pickle file')
    parser.add_argument('--work-dir', help='dir to save logs and metrics')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (relative: under '
        'the work dir, see the module docstring)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='paint every INTERVAL-th image (mmseg: batch; mmdet paints all '
        'test images)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. test_dataloader.batch_size=2')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _with_dump(cfg: Config, out: str) -> None:
    """Add mmengine's ``DumpResults`` to the test evaluator(s)."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out}')

    def with_dump(ev, path):
        ev = [ev] if isinstance(ev, dict) else list(ev)
        return ev + [dict(type='DumpResults', out_file_path=path)]

    evaluator = cfg.test_evaluator
    if isinstance(evaluator, dict) and 'type' not in evaluator:
        # per-task evaluators (GPPF's MultiTaskTestLoop): one file each
        stem = osp.splitext(out)[0]
        cfg.test_evaluator = {
            task: with_dump(ev, f'{stem}_{task}.pkl')
            for task, ev in evaluator.items()
        }
    else:
        cfg.test_evaluator = with_dump(evaluator, out)


# default_scope -> the toolbox's visualization hook (added when a config's
# default_hooks has none, as glid_mm's mmseg configs)
VIS_HOOKS = {
    'mmdet': 'DetVisualizationHook',
    'mmseg': 'SegVisualizationHook',
    'mmpose': 'PoseVisualizationHook',
    'mmpretrain': 'VisualizationHook',
}


def _hook_name(hook_type) -> str:
    name = getattr(hook_type, '__name__', hook_type)
    return str(name).rsplit('.', 1)[-1]


def _with_visualization(cfg: Config,
                        show: bool,
                        show_dir,
                        wait_time: float,
                        interval: int = 1):
    """Turn on ``default_hooks.visualization`` as mmdet/mmseg/mmpose/
    mmpretrain's ``tools/test.py`` do for ``--show`` / ``--show-dir``."""
    evaluator = cfg.get('test_evaluator')
    if isinstance(evaluator, dict) and 'type' not in evaluator:
        raise ValueError('--show/--show-dir: not supported for multi-task '
                         '(per-task test_evaluator) configs')
    if cfg.get('default_hooks') is None:
        cfg.default_hooks = dict()
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        scope = cfg.get('default_scope')
        if scope not in VIS_HOOKS:
            raise ValueError(
                '--show/--show-dir: the config has no '
                'default_hooks.visualization and its default_scope '
                f'{scope!r} is none of {sorted(VIS_HOOKS)}')
        cfg.default_hooks.visualization = dict(
            type=f'{scope}.{VIS_HOOKS[scope]}')
        hook = cfg.default_hooks.visualization  # the ConfigDict copy
    name = _hook_name(hook['type'])
    if show_dir is not None and not osp.isabs(show_dir) \
            and name in ('SegVisualizationHook', 'VisualizationHook'):
        # these hooks do not join it with the work dir themselves
        show_dir = osp.join(cfg.work_dir, show_dir)
    if name == 'DetVisualizationHook':
        hook.update(draw=True, test_out_dir=show_dir)
    elif name == 'SegVisualizationHook':
        hook['draw'] = True
        if show_dir is not None:
            cfg.visualizer['save_dir'] = show_dir
    elif name in ('PoseVisualizationHook', 'VisualizationHook'):
        hook.update(enable=True, out_dir=show_dir)
    else:
        raise ValueError(f'--show/--show-dir: unknown visualization hook '
                         f'{hook["type"]!r} (expected one of '
                         f'{sorted(VIS_HOOKS.values())})')
    # the hooks' default, 50, would paint one image in 50 (mmseg: none of
    # the first 49 batches); mmdet's hook paints all test images anyway
    hook['interval'] = interval
    hook['show'] = show
    if show:
        hook['wait_time'] = wait_time


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    # Config.fromfile, with glid_mm:: bases resolved (glid_mm.utils.mim)
    cfg = load_config(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    # GPPF task configs named by path: read once, here (the components get
    # plain dicts; TaskConfigRunner would do the same)
    cfg = resolve_task_configs(cfg)
    check_inputs(cfg, keys=('test_dataloader', ), tasks=False)
    if args.out is not None:
        _with_dump(cfg, args.out)
    if args.show or args.show_dir is not None:
        _with_visualization(cfg, args.show, args.show_dir, args.wait_time,
                            args.interval)
    # the checkpoint is the trained model: it must fit as load_from does
    _, metrics = run_checked(cfg, 'test',
                             partial(check_built_runner, train=False))
    return metrics


if __name__ == '__main__':
    main()
