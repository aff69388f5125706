#!/usr/bin/env python
"""Train a config of mmdet, mmseg, mmpose or mmpretrain with glid_mm.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher pytorch]
"""
import glid_mm  # noqa: F401  (version guard, safe checkpoints, registries)
from glid_mm.utils.launch import main_train

if __name__ == '__main__':
    main_train()
