"""Run the whole benchmark suite in one process on one machine:
GLID pre-training step vs SimMIM, panoptic inference vs Mask2Former,
detection inference vs DINO / DETR, LiT decoding + GPPF lego memory + SIMT
overhead, and parameters / FLOPs of configs/glid.

    python tools/benchmark/run_all.py --device cuda          # issue settings
    python tools/benchmark/run_all.py --arch nano --device cpu --iters 2

Without ``--arch`` the sizes follow the device: ``base`` (the issue's) on
CUDA, ``nano`` on the CPU. Each benchmark shows a progress bar with elapsed
time and ETA (mmengine's ``ProgressBar``; ``--no-progress`` hides them).

Writes each benchmark's ``<out-dir>/<name>.{json,md}`` and the whole run as
``<out-dir>/benchmark_suite.{json,md}`` (machine, versions and settings
once, then every table). A benchmark that fails as a whole is recorded in
the suite file and the others still run.
"""
import argparse
import sys
import time
import traceback

import torch

from glid_tools.benchmark.cli import add_common_args, resolve_common
from glid_tools.benchmark.complexity import benchmark_complexity
from glid_tools.benchmark.environment import collect_environment
from glid_tools.benchmark.inference import benchmark_inference
from glid_tools.benchmark.pretrain_step import benchmark_pretrain_step
from glid_tools.benchmark.report import (NOT_RUN, failed_own_rows,
                                         result_markdown, write_json_markdown,
                                         write_results)
from glid_tools.benchmark.side_costs import benchmark_side_costs

BENCHMARKS = ('pretrain', 'panoptic', 'detection', 'side_costs', 'complexity')
SIZES = dict(
    base=dict(pretrain=(128, 192), panoptic=(640, 640), detection=(800, 1333)),
    nano=dict(pretrain=(2, 64), panoptic=(128, 128), detection=(128, 128)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(p)
    p.add_argument(
        '--only',
        nargs='+',
        choices=BENCHMARKS,
        default=list(BENCHMARKS),
        help='benchmarks to run')
    p.add_argument(
        '--complexity-configs',
        default=None,
        help="configs/glid glob (default: base '*', nano "
        "'*nano*')")
    return resolve_common(p.parse_args(argv))


def _jobs(args):
    sizes = SIZES[args.arch]
    common = dict(
        arch=args.arch,
        device=args.device,
        dtype=args.dtype,
        warmup=args.warmup,
        iters=args.iters)
    progress = not args.no_progress
    batch = args.batch_size
    return dict(
        pretrain=lambda: benchmark_pretrain_step(
            batch_size=batch or sizes['pretrain'][0],
            img_size=sizes['pretrain'][1],
            progress=progress,
            **common),
        panoptic=lambda: benchmark_inference(
            'panoptic',
            batch_size=batch or 1,
            img_size=sizes['panoptic'],
            progress=progress,
            **common),
        detection=lambda: benchmark_inference(
            'detection',
            batch_size=batch or 1,
            img_size=sizes['detection'],
            progress=progress,
            **common),
        side_costs=lambda: benchmark_side_costs(
            batch_size=batch, progress=progress, **common),
        complexity=lambda: benchmark_complexity(
            args.complexity_configs or ('*'
                                        if args.arch == 'base' else '*nano*'),
            with_peers=args.arch == 'base',
            device=args.device,
            progress=progress))


def main(argv=None) -> int:
    args = parse_args(argv)
    jobs = _jobs(args)
    results, failures = [], {}
    for i, name in enumerate(args.only, 1):
        start = time.perf_counter()
        print(f'[run_all] {i}/{len(args.only)} {name} ...', flush=True)
        try:
            result = jobs[name]()
        except Exception as exc:  # recorded; the suite goes on
            traceback.print_exc()
            failures[name] = f'{type(exc).__name__}: {exc}'[:300]
            continue
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        result['seconds'] = round(time.perf_counter() - start, 1)
        write_results(result, args.out_dir)
        results.append(result)
        print(f"[run_all] {name}: {result['seconds']} s", flush=True)
    env = collect_environment(torch.device(args.device))
    suite = dict(
        name='benchmark_suite',
        environment=env,
        settings=dict(
            arch=args.arch,
            device=args.device,
            dtype=args.dtype,
            warmup=args.warmup,
            iters=args.iters,
            batch_size=args.batch_size),
        results=results,
        failed_benchmarks=failures)
    lines = [
        '# glid_mm benchmark suite', '',
        f"Device: {env['device']}; torch {env['torch']}, mmcv "
        f"{env['mmcv']} (ops CUDA {env['mmcv_ops_cuda']}); "
        f"{env['date_utc']} UTC. Settings: " +
        ', '.join(f'{k}={v}' for k, v in suite['settings'].items()), ''
    ]
    for name, reason in failures.items():
        lines.append(f'- {name}: {NOT_RUN}{reason}')
    for result in results:
        page = result_markdown(result).replace('\n# ', '\n## ')
        lines += ['#' + page, f"({result['seconds']} s)", '']
    paths = write_json_markdown(args.out_dir, 'benchmark_suite', suite,
                                '\n'.join(lines) + '\n')
    print(f"suite written to {paths['json']} and {paths['markdown']}")
    failed = [f for r in results for f in failed_own_rows(r)]
    if args.strict and (failed or failures):
        print(
            '[run_all] failed: ' + '; '.join(failed + list(failures)),
            file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
