#!/usr/bin/env python
"""Multi-seed studies: does glid_mm's pre-training give a better model?

    python tools/study.py STUDY [--preset cpu|gpu] [--seeds N] [--dev]
        [--work-dir work_dirs/study] [--jobs 1] [--only INIT/LABELS ...]
        [--dry-run] [--no-progress]

STUDY:
  glid-camvid      nano GLID pre-trained at two budgets (the main job's and
                   8x longer) vs random initialisation, CamVid semantic
                   segmentation with all / 25 % of the labelled frames,
                   N seeds per cell, CamVid val mIoU (mmseg IoUMetric)
  glid-table4      GLID Table 4: backbone / backbone + Bi-FPN / all
                   pre-trained (long) vs random, 25 % labels, same seeds
  m3i-hymenoptera  M3I / M3I without mixing / random encoder, hymenoptera
                   linear probe, N seeds (pre-training and probe)
  glid-generalist  the nano GLID generalist (det, seg, depth, pose by SIMT
                   on 2 processes) vs the four single-task runs at the
                   same total number of task batches, N seeds; each
                   task's own metric side by side (--only generalist det
                   seg depth pose)
--dev runs the recipe selection on a development split carved out of the
training data instead (no val image is used).

Every run is trained / tested by tools/train.py / tools/test.py into
<work-dir>/runs/<preset>/<run>/ (its config.py inherits the project's
config). A second call skips finished runs, resumes an interrupted one
from its last checkpoint and reruns those whose plan changed. Results:
<work-dir>/<study>[-dev]/results.{md,json} and study.png. --dry-run
prints the plan (runs, iterations, estimated time, what is done).
"""
import argparse
import importlib
import json
import os
import os.path as osp
import platform
import sys
import time

from glid_tools.study import plan_table, run_plan

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: study name -> module (its PRESETS, build_plan and report)
STUDIES = {
    'glid-camvid': 'glid_tools.study_glid',
    'glid-table4': 'glid_tools.study_glid',
    'm3i-hymenoptera': 'glid_tools.study_m3i',
    'glid-generalist': 'glid_tools.study_generalist',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('study', choices=sorted(STUDIES))
    parser.add_argument(
        '--preset',
        default='cpu',
        choices=['cpu', 'gpu', 'tiny'],
        help="budget: 'cpu' (<= 100 min on 2 cores), 'gpu' "
        "(about an hour on one GPU), 'tiny' (tests)")
    parser.add_argument(
        '--seeds', type=int, help='seeds per cell (default: the preset\'s)')
    parser.add_argument(
        '--dev',
        action='store_true',
        help='recipe selection on the development split')
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument(
        '--jobs', type=int, help='runs at once (default: the preset\'s)')
    parser.add_argument(
        '--only',
        nargs='+',
        metavar='INIT/LABELS',
        help='run only these cells (e.g. random/all)')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the plan and the estimated time only')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error('--seeds must be >= 1')
    if args.jobs is not None and args.jobs < 1:
        parser.error('--jobs must be >= 1')
    return args


def machine() -> str:
    import torch
    return (f'{platform.node()}: {os.cpu_count()} CPU cores, '
            f'{platform.processor() or platform.machine()}, '
            f'Python {platform.python_version()}, torch {torch.__version__}' +
            (f', GPU {torch.cuda.get_device_name(0)}'
             if torch.cuda.is_available() else ', no GPU'))


def main(argv=None) -> dict:
    args = parse_args(argv)
    mod = importlib.import_module(STUDIES[args.study])
    preset = mod.PRESETS[args.preset]
    seeds = args.seeds or preset['seeds']
    jobs = args.jobs or preset['jobs']
    work_dir = osp.abspath(args.work_dir)
    runs_dir = osp.join(work_dir, 'runs', args.preset)
    plan = mod.build_plan(
        args.study,
        ROOT,
        args.preset,
        seeds,
        runs_dir,
        dev=args.dev,
        only=args.only)
    name = args.study + ('-dev' if args.dev else '')
    print(f'[study] {name}, preset {args.preset}, {seeds} seeds, '
          f'runs in {runs_dir}')
    print(plan_table(plan, runs_dir), flush=True)
    if args.dry_run:
        return {}
    t0 = time.time()
    started = time.strftime('%Y-%m-%d %H:%M')
    records = run_plan(
        plan, ROOT, runs_dir, jobs=jobs, progress=not args.no_progress)
    out_dir = osp.join(work_dir, name)
    os.makedirs(out_dir, exist_ok=True)
    md, data = mod.report(
        args.study, ROOT, args.preset, plan, records, out_dir, dev=args.dev)
    command = 'python tools/study.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:])
    where = machine()
    head = [
        f'# {name} (preset {args.preset}, ' +
        ('seed 0)' if args.dev else f'{seeds} seeds)'), '',
        f'Command: `{command}`', f'Machine: {where}',
        f'Started {started}; this call took '
        f'{(time.time() - t0) / 60:.1f} min (steps reused from an earlier '
        'call count in the steps\' wall time below, not here).', '', ''
    ]
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write('\n'.join(head) + md + '\n')
    data.update(
        command=command,
        machine=where,
        started=started,
        call_wall_s=round(time.time() - t0, 1),
        seeds=seeds)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(data, f, indent=1)
    print('\n'.join(head) + md)
    print(f'[study] wrote {out_dir}/results.md, results.json, study.png')
    return data


if __name__ == '__main__':
    main()
