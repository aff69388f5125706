"""GLID pre-training step vs mmpretrain's SimMIM: images/s, peak memory,
FLOPs and MFU (issue 9, item 1). Thin wrapper over
:func:`glid_mm.benchmark.pretrain_step.benchmark_pretrain_step`.

    # the issue's setting: Swin-B, 192 px, bf16, batch 128 per GPU
    python tools/benchmark/glid_pretrain_step.py --device cuda
    # CPU smoke: nano models, 64 px, batch 2
    python tools/benchmark/glid_pretrain_step.py --arch nano --device cpu \
        --iters 2

Writes ``<out-dir>/glid_pretrain_step.{json,md}``.
"""
import argparse
import sys

from glid_mm.benchmark.cli import add_common_args, finish, pick, \
    resolve_common
from glid_mm.benchmark.pretrain_step import benchmark_pretrain_step


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(p)
    p.add_argument('--img-size', type=int, default=None,
                   help='square input (default: base 192, nano 64)')
    p.add_argument('--no-flops', action='store_true',
                   help='skip FLOP counting (and MFU)')
    return resolve_common(p.parse_args(argv))


def main(argv=None) -> int:
    args = parse_args(argv)
    result = benchmark_pretrain_step(
        arch=args.arch,
        device=args.device,
        dtype=args.dtype,
        batch_size=pick(args.batch_size, args.arch, dict(base=128, nano=2)),
        img_size=pick(args.img_size, args.arch, dict(base=192, nano=64)),
        warmup=args.warmup,
        iters=args.iters,
        with_flops=not args.no_flops)
    return finish(result, args)


if __name__ == '__main__':
    sys.exit(main())
