#!/usr/bin/env python
"""Evaluate a checkpoint on a config of mmdet, mmseg, mmpose or mmpretrain.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out preds.pkl]
        [--cfg-options k=v ...] [--launcher pytorch]

The checkpoint must fit the model as ``load_from`` does in training
(:func:`glid_mm.utils.load_check.check_load_from`).
"""
import argparse
import os
import os.path as osp
from functools import partial

from mmengine.config import Config, DictAction

import glid_mm  # noqa: F401  (version guard, safe checkpoints, registries)
from glid_mm.utils.mim import load_config
from glid_mm.utils.preflight import (check_built_runner, check_inputs,
                                     run_checked)


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
    check_inputs(cfg, keys=('test_dataloader', ), tasks=False)
    if args.out is not None:
        _with_dump(cfg, args.out)
    # the checkpoint is the trained model: it must fit as load_from does
    _, metrics = run_checked(cfg, 'test',
                             partial(check_built_runner, train=False))
    return metrics


if __name__ == '__main__':
    main()
