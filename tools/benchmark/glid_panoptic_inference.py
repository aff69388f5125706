"""GLID panoptic inference vs mmdet's Mask2Former: latency, images/s, peak
memory and FLOPs per part (issue 9, item 2; supp. Table 2). Thin wrapper
over :func:`glid_mm.benchmark.inference.benchmark_inference`.

    # the issue's setting: Swin-B, 640x640, bf16, batch 1
    python tools/benchmark/glid_panoptic_inference.py --device cuda
    python tools/benchmark/glid_panoptic_inference.py --device cuda \
        --dtype fp32 --batch-size 8
    # CPU smoke: nano models, 128x128
    python tools/benchmark/glid_panoptic_inference.py --arch nano \
        --device cpu --iters 2

Writes ``<out-dir>/glid_panoptic_inference.{json,md}``.
"""
import argparse
import sys

from glid_mm.benchmark.cli import add_common_args, finish, pick, \
    resolve_common
from glid_mm.benchmark.inference import benchmark_inference
from glid_mm.benchmark.models import GLID_PANOPTIC, mask2former, \
    parse_peer_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(p)
    p.add_argument('--img-size', type=int, nargs=2, default=None,
                   metavar=('H', 'W'),
                   help='input size (default: base 640 640, nano 128 128)')
    p.add_argument('--extra-peer', action='append', default=[],
                   metavar='NAME=CONFIG',
                   help='another model to compare, from its config '
                   '(e.g. mmdet::...); repeatable')
    p.add_argument('--no-flops', action='store_true')
    return resolve_common(p.parse_args(argv))


def main(argv=None) -> int:
    args = parse_args(argv)
    models = [GLID_PANOPTIC, mask2former(100, 50)]
    models += [parse_peer_config(s) for s in args.extra_peer]
    result = benchmark_inference(
        'panoptic',
        arch=args.arch,
        device=args.device,
        dtype=args.dtype,
        batch_size=pick(args.batch_size, args.arch, dict(base=1, nano=1)),
        img_size=pick(args.img_size, args.arch,
                      dict(base=(640, 640), nano=(128, 128))),
        warmup=args.warmup,
        iters=args.iters,
        with_flops=not args.no_flops,
        models=models)
    return finish(result, args)


if __name__ == '__main__':
    sys.exit(main())
