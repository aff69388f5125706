"""Cost of SIMT: one iteration of the nano GLID generalist on 2 processes
against the same task alone under plain DDP (issue 23).

    python tools/benchmark/generalist_simt_cost.py [--tasks seg depth ...]
        [--iters 30] [--warmup 5] [--repeats 1] [--out-dir DIR]

For each task, two 2-process runs of ``tools/train.py --launcher pytorch``
(``torch.distributed.run --standalone``, gloo on the CPU), interleaved:

- ``simt``: the generalist config (all four task models on the shared
  Swin + Bi-FPN + decoder, ``SIMTDistributedWrapper``, CrossTaskSyncBN)
  with the other tasks' weights at 1e-6, so both processes draw this task
  (an iteration where one did not is dropped) and the other heads sit
  idle as they do when a process draws another task;
- ``ddp``: the task's single-task nano config under mmengine's default
  ``MMDistributedDataParallel`` (SyncBN in its Bi-FPN).

Both with batch 2 per process, the same optimizer (the generalist's AdamW,
clip 0.1), no validation. The time of an iteration is mmengine's logged
``time`` (``IterTimerHook``: from the end of one iteration to the end of
the next, so it includes loading the batch, whose part, ``data_time``, is
reported beside it); the first ``--warmup`` iterations are dropped. Writes
``<out-dir>/generalist_simt_cost.{json,md}``: mean and standard deviation
per run and the ratio ``simt / ddp`` per task (goal: at most 1.1).
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from glid_tools.study_generalist import TASKS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--tasks', nargs='+', default=list(TASKS), choices=list(TASKS))
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = parser.parse_args(argv)
    if args.iters <= args.warmup or args.warmup < 0:
        parser.error('--iters must exceed --warmup >= 0')
    return args


def _configs(task: str, iters: int, folder: str) -> dict:
    """The two derived configs (``simt``, ``ddp``) of ``task``."""
    from glid_tools.study_generalist import GENERALIST, TASKS, _schedule
    never = iters + 1
    common = _schedule(ROOT, iters) + [
        'default_hooks = dict(logger=dict(type="LoggerHook", interval=1, '
        'log_metric_by_epoch=False), checkpoint=dict(_delete_=True, '
        f'type="CheckpointHook", by_epoch=False, interval={never}))'
    ]
    single = osp.join(ROOT, TASKS[task][0])
    # every task keeps its loader and a weight (the model has all four);
    # the others' weight 1e-6: over 2 x 30 draws, another task has a
    # chance of about 2e-4, and such iterations are dropped (simt.<task>)
    weights = ', '.join(f'{t}={1.0 if t == task else 1e-6}' for t in TASKS)
    simt = [
        f'_base_ = [{osp.join(ROOT, GENERALIST)!r}]',
        f'train_cfg = dict(max_iters={iters}, val_interval={never}, '
        f'task_weights=dict({weights}))',
    ] + common
    ddp = [
        f'_base_ = [{single!r}]', 'train_dataloader = dict(batch_size=2)',
        'train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", '
        f'max_iters={iters}, val_interval={never})'
    ] + common
    out = {}
    for mode, lines in (('simt', simt), ('ddp', ddp)):
        path = osp.join(folder, f'{task}_{mode}.py')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        out[mode] = path
    return out


def _run(config: str, work_dir: str, task: str) -> list:
    """Train ``config`` on 2 processes; the logged ``(time, data_time)``
    of the iterations where both processes ran ``task`` (all of them under
    DDP)."""
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone',
        '--nproc_per_node', '2', 'tools/train.py', config, '--work-dir',
        work_dir, '--launcher', 'pytorch'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} exited {proc.returncode}:\n' +
                           proc.stdout[-2000:] + proc.stderr[-2000:])
    from glid_tools.stack_demo import read_scalars
    return [(r['time'], r['data_time']) for r in read_scalars(work_dir)
            if 'loss' in r and r.get(f'simt.{task}', 2) == 2]


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            cfgs = _configs(task, args.iters, tmp)
            times = dict(simt=[], ddp=[])
            for rep in range(args.repeats):
                for mode in ('simt', 'ddp'):  # interleaved
                    t = _run(cfgs[mode], osp.join(tmp, f'{task}_{mode}_{rep}'),
                             task)[args.warmup:]
                    times[mode] += t
                    print(
                        f'[simt-cost] {task} {mode} repeat {rep}: '
                        f'{statistics.mean(x for x, _ in t):.3f} s/iter',
                        flush=True)
            row = {
                mode:
                dict(
                    mean_s=statistics.mean(x for x, _ in v),
                    std_s=statistics.stdev(
                        x for x, _ in v) if len(v) > 1 else 0.0,
                    data_mean_s=statistics.mean(d for _, d in v),
                    n=len(v))
                for mode, v in times.items()
            }
            row['ratio'] = row['simt']['mean_s'] / row['ddp']['mean_s']
            results[task] = row
    settings = dict(
        iters=args.iters,
        warmup=args.warmup,
        repeats=args.repeats,
        processes=2,
        batch_per_process=2,
        machine=f'{os.cpu_count()} CPU cores, {platform.machine()}, '
        f'torch {torch.__version__}',
        date=time.strftime('%Y-%m-%d %H:%M'))
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'generalist_simt_cost.json'), 'w') as f:
        json.dump(dict(settings=settings, results=results), f, indent=1)
    lines = [
        '| task | SIMT generalist s/iter (mean +- sd) | DDP single-task '
        's/iter | SIMT / DDP | of which data loading, SIMT / DDP (ms) |',
        '|---|---|---|---|---|'
    ] + [
        f'| {t} | {r["simt"]["mean_s"]:.3f} +- {r["simt"]["std_s"]:.3f} | '
        f'{r["ddp"]["mean_s"]:.3f} +- {r["ddp"]["std_s"]:.3f} | '
        f'{r["ratio"]:.2f}x | {1000 * r["simt"]["data_mean_s"]:.0f} / '
        f'{1000 * r["ddp"]["data_mean_s"]:.0f} |' for t, r in results.items()
    ]
    md = '\n'.join(lines)
    with open(osp.join(args.out_dir, 'generalist_simt_cost.md'), 'w') as f:
        f.write(md + '\n')
    print(md)
    return dict(settings=settings, results=results)


if __name__ == '__main__':
    main()
