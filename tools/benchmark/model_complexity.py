"""Parameters and FLOPs of every configs/glid config per part (encoder /
Bi-FPN / decoder / head) next to supp. Tables 2-3. Thin wrapper over
:func:`glid_tools.benchmark.complexity.benchmark_complexity`.

    python tools/benchmark/model_complexity.py            # every config
    python tools/benchmark/model_complexity.py --configs 'glid-panseg_*'
    python tools/benchmark/model_complexity.py --configs '*nano*' \
        --no-peers                                        # CPU smoke

FLOPs follow fvcore's convention (one multiply-add = one FLOP), one image
at the size in the config name. A progress bar (mmengine's ``ProgressBar``)
shows the configs done, elapsed time and ETA; the default (every config
plus Mask2Former) took 4.5 minutes on 2 CPU cores (docs/benchmarks.md).
Writes ``<out-dir>/model_complexity.{json,md}``.
"""
import argparse
import sys

import torch

from glid_tools.benchmark.cli import DEFAULT_OUT_DIR, finish
from glid_tools.benchmark.complexity import benchmark_complexity


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        '--configs', default='*', help='glob on the configs/glid file names')
    p.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        default=None,
        metavar=('H', 'W'),
        help='one size for every config (default: each '
        "config's size)")
    p.add_argument(
        '--no-peers',
        action='store_true',
        help="skip mmdet's Mask2Former Swin-B (MSDeformAttn "
        'reference of supp. Table 2)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--out-dir', default=DEFAULT_OUT_DIR)
    p.add_argument(
        '--no-progress',
        action='store_true',
        help='no progress bar (elapsed time and ETA)')
    p.add_argument(
        '--strict',
        action='store_true',
        help='exit 1 when a config could not be measured')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = benchmark_complexity(
        args.configs,
        img_size=args.img_size,
        with_peers=not args.no_peers,
        device=args.device,
        progress=not args.no_progress)
    return finish(result, args)


if __name__ == '__main__':
    sys.exit(main())
