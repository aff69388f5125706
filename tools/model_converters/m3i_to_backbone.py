"""Convert an M3I checkpoint into a plain mmpretrain ViT backbone checkpoint.

    python tools/model_converters/m3i_to_backbone.py SRC DST \
        [--source backbone|momentum] [--check-config CFG] \
        [--cfg-options KEY=VALUE ...]

Prints the kept / dropped keys and, with ``--check-config``, the loaded,
missing and unexpected keys when DST's weights are loaded into the model of
CFG (e.g. ``mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py``).
Thin wrapper over :func:`glid_mm.models.converters.m3i_to_backbone`.
"""
import argparse
import json
import os.path as osp

import torch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='M3I checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--source',
        default='backbone',
        choices=['backbone', 'momentum'],
        help='online encoder (default) or momentum encoder')
    parser.add_argument(
        '--check-config', help='config whose model must load DST')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='overrides of --check-config, KEY=VALUE (mmengine DictAction)')
    return parser.parse_args()


def main():
    args = parse_args()
    import glid_mm  # noqa: F401  (safe checkpoint loading, registries)
    from glid_mm.models.converters.m3i_to_backbone import m3i_to_backbone
    from glid_mm.utils.load_check import (CheckpointMismatchError, by_part,
                                          load_and_report)

    state, report = m3i_to_backbone(args.src, source=args.source)
    torch.save(
        dict(
            state_dict=state,
            meta=dict(
                converted_from=osp.basename(args.src), source=args.source)),
        args.dst)
    summary = dict(
        kept=len(report['kept']), dropped=report['dropped'], saved=args.dst)
    if args.check_config:
        from mmengine.config import Config, DictAction
        from mmengine.registry import DefaultScope, init_default_scope

        if '::' in args.check_config:  # e.g. mmpretrain::vision_...py
            from mmengine.hub import get_config
            cfg = get_config(args.check_config)
        else:
            cfg = Config.fromfile(args.check_config)
        if args.cfg_options:
            action = DictAction(option_strings=[], dest='cfg_options')
            options = argparse.Namespace()
            action(None, options, args.cfg_options)
            cfg.merge_from_dict(options.cfg_options)
        scope = cfg.get('default_scope', 'mmpretrain')
        init_default_scope(scope)
        from mmengine.registry import MODELS
        model = MODELS.build(cfg.model)
        try:
            loading = load_and_report(model, state, args.src)
        except CheckpointMismatchError as err:
            raise SystemExit(f'{args.check_config}: {err}')
        missing = by_part(loading['missing'])
        summary.update(
            check_config=args.check_config,
            scope=DefaultScope.get_current_instance().scope_name,
            loaded=len(loading['loaded']),
            missing_backbone=missing.pop('backbone', []),
            missing_other=sum(missing.values(), []),
            unexpected=loading['unexpected'])
    print(json.dumps(summary, indent=1))
    if args.check_config and (summary['missing_backbone']
                              or summary['unexpected']):
        raise SystemExit('the converted backbone does not match '
                         f'{args.check_config}: see the report above')


if __name__ == '__main__':
    main()
