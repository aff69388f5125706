"""Command-line pieces shared by ``tools/benchmark/*.py``."""
import argparse
import sys
from typing import Dict, List, Tuple

import torch

from glid_tools.benchmark.report import (NOT_RUN, failed_own_rows,
                                         result_markdown, write_results)

DEFAULT_OUT_DIR = 'work_dirs/benchmark'


def add_common_args(parser: argparse.ArgumentParser,
                    iters: int = 10,
                    warmup: int = 2) -> argparse.ArgumentParser:
    """``--arch --device --dtype --batch-size --iters --warmup --threads
    --out-dir --no-progress --strict`` (the size flags are the script's
    own)."""
    parser.add_argument(
        '--arch',
        choices=('base', 'nano'),
        default=None,
        help="'base': the paper's Swin-B models and the peers' Swin-B "
        "configs; 'nano': nano models for CPU smoke runs (default: base "
        'on CUDA, nano on the CPU, where base takes hours on 2 cores)')
    parser.add_argument(
        '--device',
        default=None,
        help='cuda or cpu (default: cuda when available)')
    parser.add_argument(
        '--dtype',
        choices=('bf16', 'fp32'),
        default=None,
        help='bf16 (torch.autocast) or fp32 (default: bf16 on CUDA, fp32 '
        'on CPU; bf16 on CPU runs but is slow)')
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument(
        '--iters', type=int, default=iters, help='timed iterations')
    parser.add_argument(
        '--warmup', type=int, default=warmup, help='untimed iterations first')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch\'s own choice)')
    parser.add_argument('--out-dir', default=DEFAULT_OUT_DIR)
    parser.add_argument(
        '--no-progress',
        action='store_true',
        help='no progress bar (elapsed time and ETA) while measuring')
    parser.add_argument(
        '--strict',
        action='store_true',
        help='exit 1 when a glid_mm model did not run (peers that cannot '
        "run a setting never fail the run: their row says 'not run')")
    return parser


def resolve_common(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the device / arch / dtype defaults and apply ``--threads``.

    Without ``--arch`` the size follows the device, as
    ``tools/benchmark/lit_decoding.py``'s presets do: the paper's Swin-B
    (``base``) on CUDA, the nano models on the CPU (``--arch base --device
    cpu`` still runs the paper sizes on the CPU).
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit(f'--device {args.device}: no CUDA device here')
    if getattr(args, 'arch', 'base') is None:
        args.arch = 'base' if args.device.startswith('cuda') else 'nano'
    if args.dtype is None:
        args.dtype = 'bf16' if args.device.startswith('cuda') else 'fp32'
    return args


def pick(value, arch: str, defaults: Dict[str, object]):
    """``value`` if given, else the arch's default."""
    return defaults[arch] if value is None else value


def finish(result: dict, args: argparse.Namespace, quiet: bool = False) -> int:
    """Write the result files, print the table; the exit status."""
    paths = write_results(result, args.out_dir)
    if not quiet:
        print(result_markdown(result))
    print(f"results written to {paths['json']} and {paths['markdown']}")
    not_run = [
        r for r in result['rows']
        if str(r.get('status', '')).startswith(NOT_RUN)
    ]
    for row in not_run:
        name = row.get('model') or row.get('config') or row.get('group')
        print(f"[benchmark] {name}: {row['status']}", file=sys.stderr)
    failed = failed_own_rows(result)
    if failed and getattr(args, 'strict', False):
        print(
            '[benchmark] glid_mm models that did not run: ' +
            '; '.join(failed),
            file=sys.stderr)
        return 1
    return 0


__all__: List[str] = ['add_common_args', 'resolve_common', 'pick', 'finish']


def pretrain_step_main(argv, cli_help: str, batch_sizes: Dict[str, int],
                       img_sizes: Dict[str, int], **bench_kwargs) -> int:
    """The command line shared by the pre-training step benchmarks
    (``tools/benchmark/{glid,m3i}_pretrain_step.py``): common options plus
    ``--img-size`` and ``--no-flops``; ``batch_sizes`` / ``img_sizes`` are
    the per-arch defaults, ``bench_kwargs`` go to
    :func:`glid_tools.benchmark.pretrain_step.benchmark_pretrain_step` (the
    models compared and the result's name)."""
    from glid_tools.benchmark.pretrain_step import benchmark_pretrain_step
    p = argparse.ArgumentParser(description=cli_help)
    add_common_args(p)
    p.add_argument(
        '--img-size',
        type=int,
        default=None,
        help='square input (default: ' +
        ', '.join(f'{k} {v}' for k, v in img_sizes.items()) + ')')
    p.add_argument(
        '--no-flops', action='store_true', help='skip FLOP counting (and MFU)')
    args = resolve_common(p.parse_args(argv))
    result = benchmark_pretrain_step(
        arch=args.arch,
        device=args.device,
        dtype=args.dtype,
        batch_size=pick(args.batch_size, args.arch, batch_sizes),
        img_size=pick(args.img_size, args.arch, img_sizes),
        warmup=args.warmup,
        iters=args.iters,
        with_flops=not args.no_flops,
        progress=not args.no_progress,
        **bench_kwargs)
    return finish(result, args)


def inference_main(argv, cli_help: str, task: str, ours, peers: Dict[str,
                                                                     object],
                   img_sizes: Dict[str, Tuple[int, int]]) -> int:
    """The command line shared by the inference benchmarks
    (``tools/benchmark/glid_{panoptic,detection}_inference.py``): common
    options plus ``--img-size H W``, ``--extra-peer NAME=CONFIG`` and
    ``--no-flops``, and ``--peers`` when there is more than one peer to
    choose from. Rows: ``ours``, then the chosen ``peers`` (all by
    default), then the extra ones."""
    from glid_tools.benchmark.inference import benchmark_inference
    from glid_tools.benchmark.models import parse_peer_config
    p = argparse.ArgumentParser(description=cli_help)
    add_common_args(p)
    p.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        default=None,
        metavar=('H', 'W'),
        help='input size (default: ' +
        ', '.join(f'{k} {h} {w}' for k, (h, w) in img_sizes.items()) + ')')
    if len(peers) > 1:
        p.add_argument(
            '--peers',
            nargs='*',
            default=list(peers),
            choices=list(peers),
            help='peers to run')
    p.add_argument(
        '--extra-peer',
        action='append',
        default=[],
        metavar='NAME=CONFIG',
        help='another model to compare, from its config '
        '(e.g. mmdet::...); repeatable')
    p.add_argument('--no-flops', action='store_true')
    args = resolve_common(p.parse_args(argv))
    chosen = getattr(args, 'peers', list(peers))
    models = [ours] + [peers[name] for name in chosen]
    models += [parse_peer_config(s) for s in args.extra_peer]
    result = benchmark_inference(
        task,
        arch=args.arch,
        device=args.device,
        dtype=args.dtype,
        batch_size=pick(args.batch_size, args.arch, dict(base=1, nano=1)),
        img_size=pick(args.img_size, args.arch, img_sizes),
        warmup=args.warmup,
        iters=args.iters,
        with_flops=not args.no_flops,
        models=models,
        progress=not args.no_progress)
    return finish(result, args)
