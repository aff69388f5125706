#!/usr/bin/env python
"""GLID end to end on the bundled real data (the README's main job):
pre-train the nano GLID, convert, fine-tune CamVid semantic segmentation
from the pre-trained and from a random initialisation, evaluate (mIoU),
and write results.{md,json}, loss_curves.png and reconstruction.png.

    python tools/demo_glid.py [--work-dir work_dirs/glid_demo]
        [--pretrain-iters 400] [--finetune-iters 800] [--table4]
        [--val-frames N]

--table4 fine-tunes from the four initialisations of GLID Table 4 (random,
backbone, backbone + BiFPN, all pre-trained weights), same seed and budget.
A progress bar counts the training iterations of all stages, with elapsed
time and ETA (about 12 minutes on 2 CPU cores with the defaults).
"""
import argparse
import os.path as osp

import glid_mm  # noqa: F401
from glid_tools.glid_demo import run_glid_demo

if __name__ == '__main__':
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/glid_demo')
    parser.add_argument('--pretrain-iters', type=int, default=400)
    parser.add_argument('--finetune-iters', type=int, default=800)
    parser.add_argument(
        '--table4',
        action='store_true',
        help='fine-tune from the four initialisations of GLID Table 4')
    parser.add_argument(
        '--val-frames',
        type=int,
        help='evaluate on the first N CamVid val frames only (a quick '
        'check; default: all 101)')
    parser.add_argument(
        '--no-progress',
        action='store_true',
        help='no progress bar (training iterations, elapsed time, ETA)')
    args = parser.parse_args()
    for name in ('pretrain_iters', 'finetune_iters', 'val_frames'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    run_glid_demo(
        osp.dirname(osp.dirname(osp.abspath(__file__))),
        args.work_dir,
        args.pretrain_iters,
        args.finetune_iters,
        args.table4,
        progress=not args.no_progress,
        val_frames=args.val_frames)
