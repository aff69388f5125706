"""Extract one path of a GPPF lego backbone as a plain ResNet checkpoint.

    python tools/gppf_extract_backbone.py CKPT OUT --task det
    python tools/gppf_extract_backbone.py CKPT OUT --path 0,1,1,0,...

GPPF Sec. 3.3 (fixed-path fine-tuning): the path is a task's learned
(argmax) path or one given per lego layer. OUT loads into mmdet's / mmseg's
``ResNet`` (``init_cfg=dict(type='Pretrained', checkpoint=OUT)``).
"""
import argparse
import os.path as osp

from glid_mm.models.converters.gppf_path_export import extract_static_backbone


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='GPPF / LegoResNet checkpoint')
    parser.add_argument('out', help='output .pth file')
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--task', help="take this task's learned path")
    group.add_argument(
        '--path', help='comma-separated unit index per lego layer')
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help="key prefix of the lego backbone (default 'backbone.'; '' for "
        'a bare LegoResNet state dict)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    if args.path is not None:
        try:
            path = [int(k) for k in args.path.split(',')]
        except ValueError:
            raise ValueError(f'--path must be comma-separated integers, got '
                             f'{args.path!r}') from None
    else:
        path = args.task
    static = extract_static_backbone(
        args.checkpoint, path, prefix=args.prefix, out_file=args.out)
    import torch
    used = torch.load(args.out, weights_only=True)['meta']['gppf_path']
    source = f'task {args.task!r}' if args.task else 'the given path'
    # the path can be reused as LegoResNet(fixed_paths=dict(<task>=...))
    print(f'path of {source}: {used}')
    print(f'saved {len(static)} tensors of a plain ResNet to {args.out}')


if __name__ == '__main__':
    main()
