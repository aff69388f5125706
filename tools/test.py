#!/usr/bin/env python
"""Evaluate a checkpoint on a config of mmdet, mmseg, mmpose or mmpretrain.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out preds.pkl]
        [--cfg-options k=v ...] [--launcher pytorch]
"""
import glid_mm  # noqa: F401  (version guard, safe checkpoints, registries)
from glid_mm.utils.launch import main_test

if __name__ == '__main__':
    main_test()
