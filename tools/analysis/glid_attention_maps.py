#!/usr/bin/env python
"""Draw a GLID model's query cross-attention maps over an image (GLID
Fig. 4): for a few queries, the attention of the last decoder blocks at the
three BiFPN scales they attend to.

    python tools/analysis/glid_attention_maps.py CONFIG CHECKPOINT IMAGE \
        [--out attention.png] [--size H W] [--queries 0 5 9] [--num 4]

Works for the GLID pre-training config (mask queries of a random 75 % mask)
and every GLID fine-tuning config (their [CLS] + e_i queries). Without
--queries the most peaked queries of the last block are shown.
"""
import argparse
import os.path as osp
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('config')
    p.add_argument(
        'checkpoint',
        help="checkpoint, or 'none' for random "
        'weights (a smoke check of the tool)')
    p.add_argument('image')
    p.add_argument('--out', default='attention.png')
    p.add_argument(
        '--size', type=int, nargs=2, default=(256, 256), metavar=('H', 'W'))
    p.add_argument('--queries', type=int, nargs='+')
    p.add_argument('--num', type=int, default=4)
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmcv
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import glid_mm  # noqa: F401
    from glid_mm.registry import build_model
    from glid_tools.glid_attention import attention_picture
    for path in (args.config, args.image) + (
        () if args.checkpoint == 'none' else (args.checkpoint, )):
        if not osp.isfile(path):
            sys.exit(f'file not found: {path}')
    cfg = Config.fromfile(args.config)
    scope = cfg.get('default_scope') or 'mmpretrain'
    init_default_scope(scope)
    model = build_model(cfg.model)
    if args.checkpoint != 'none':
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    img = mmcv.imread(args.image, channel_order='rgb')
    res = attention_picture(
        model,
        img,
        args.out,
        size=args.size,
        queries=args.queries,
        num_queries=args.num,
        seed=args.seed)
    print(f"wrote {args.out}: queries {res['queries']}, blocks "
          f"{len(res['maps'])}, levels {res['levels']}")


if __name__ == '__main__':
    main()
