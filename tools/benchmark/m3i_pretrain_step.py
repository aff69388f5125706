"""M3I pre-training step vs mmpretrain's MAE ViT-B: images/s, peak memory,
FLOPs and MFU (issue 8). The same machinery as glid_pretrain_step.py; each
model's batch comes from its own config's training pipeline (M3I: two views
with crop boxes and a category label; MAE: one crop, masking inside the
model) on random images.

    # the issue's setting: ViT-B/16, 224 px, bf16
    python tools/benchmark/m3i_pretrain_step.py --device cuda
    # CPU smoke: the tiny M3I encoder (and MAE shrunk to it), 64 px
    python tools/benchmark/m3i_pretrain_step.py --arch nano --device cpu \
        --iters 2

Writes ``<out-dir>/m3i_pretrain_step.{json,md}``.
"""
import argparse
import sys

from glid_mm.benchmark.cli import add_common_args, finish, pick, \
    resolve_common
from glid_mm.benchmark.models import MAE, M3I_PRETRAIN
from glid_mm.benchmark.pretrain_step import benchmark_pretrain_step


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(p)
    p.add_argument('--img-size', type=int, default=None,
                   help='square input (default: base 224, nano 64)')
    p.add_argument('--no-flops', action='store_true',
                   help='skip FLOP counting (and MFU)')
    return resolve_common(p.parse_args(argv))


def main(argv=None) -> int:
    args = parse_args(argv)
    result = benchmark_pretrain_step(
        arch=args.arch,
        device=args.device,
        dtype=args.dtype,
        batch_size=pick(args.batch_size, args.arch, dict(base=64, nano=2)),
        img_size=pick(args.img_size, args.arch, dict(base=224, nano=64)),
        warmup=args.warmup,
        iters=args.iters,
        with_flops=not args.no_flops,
        models=(M3I_PRETRAIN, MAE),
        name='m3i_pretrain_step',
        title='M3I pre-training step vs MAE',
        description='One optimisation step of pre-training, M3I '
        '(configs/m3i, two mixed views, momentum-encoder targets) vs '
        "mmpretrain's MAE, same device, precision, batch and image size.")
    return finish(result, args)


if __name__ == '__main__':
    sys.exit(main())
