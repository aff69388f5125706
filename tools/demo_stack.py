#!/usr/bin/env python
"""Train 2 iterations of one stock tiny model per toolbox on the bundled
data and evaluate each with its toolbox's metric (configs/stack/).

    python tools/demo_stack.py [--work-dir work_dirs/stack_demo]
"""
import argparse
import os.path as osp

import glid_mm  # noqa: F401
from glid_tools.stack_demo import run_stack_demo

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--work-dir', default='work_dirs/stack_demo')
    parser.add_argument(
        '--no-progress',
        action='store_true',
        help='no progress bar (configs done, elapsed time, ETA)')
    args = parser.parse_args()
    run_stack_demo(
        osp.dirname(osp.dirname(osp.abspath(__file__))),
        args.work_dir,
        progress=not args.no_progress)
