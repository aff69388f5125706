#!/usr/bin/env python
"""Turn a GLID pre-training checkpoint into a fine-tuning initialisation.

    python tools/model_converters/glid_pretrain_to_finetune.py SRC DST
        [--mode all|backbone|backbone+neck] [--config FINETUNE_CONFIG]

Drops the pre-training head and mask tokens; with --config, builds that
fine-tuning model and prints what loading the result into it does (keys
loaded, resized by a load hook, computed by the model, shape mismatches,
missing, unexpected), by model part.
"""
import argparse
import os.path as osp

import torch

import glid_mm  # noqa: F401  (safe checkpoint globals, registries)
from glid_mm.models.converters.glid_pretrain_to_finetune import (
    MODES, convert_pretrain_to_finetune)
from glid_mm.utils.load_check import dry_run_report, format_load_report


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src', help='GLID pre-training checkpoint')
    parser.add_argument('dst', help='output checkpoint (for load_from)')
    parser.add_argument('--mode', default='all', choices=sorted(MODES))
    parser.add_argument('--config', help='fine-tuning config to check')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        parser.error(f'checkpoint not found: {args.src}')
    ckpt = torch.load(args.src, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt)
    kept, dropped = convert_pretrain_to_finetune(state, args.mode)
    print(f'kept {len(kept)} tensors, dropped {len(dropped)} '
          f'(pre-training head / mask tokens / parts outside {args.mode!r})')
    torch.save(
        dict(
            state_dict=kept,
            meta=dict(
                glid_converted_from=osp.abspath(args.src), mode=args.mode)),
        args.dst)
    print(f'wrote {args.dst}')
    if args.config:
        from mmengine.config import Config
        from mmengine.registry import MODELS, DefaultScope
        cfg = Config.fromfile(args.config)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            model = MODELS.build(cfg.model)
        print(format_load_report(dry_run_report(model, kept), max_keys=None))


if __name__ == '__main__':
    main()
