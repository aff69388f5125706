"""CrossTaskSyncBN without a process group: plain BatchNorm.

The cross-process behaviour (statistics over both processes, agreeing
running statistics) is tested with 2 gloo processes in
tests/engine/model_wrappers/test_simt_wrapper.py.
"""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

import glid_mm  # noqa: F401
from glid_mm.models.gppf import CrossTaskSyncBN


def test_equals_batchnorm_without_process_group():
    torch.manual_seed(0)
    ours, ref = CrossTaskSyncBN(3), nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 6) * 2 + 1
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x))


def test_built_by_norm_cfg_with_bn_name():
    name, layer = build_norm_layer(dict(type='CrossTaskSyncBN'), 8, postfix=1)
    assert name == 'bn1' and isinstance(layer, CrossTaskSyncBN)
    _, frozen = build_norm_layer(
        dict(type='CrossTaskSyncBN', requires_grad=False), 8)
    assert not frozen.weight.requires_grad


def test_rejects_1d_input():
    with pytest.raises(ValueError, match=r'\[B, C, \*\]'):
        CrossTaskSyncBN(3)(torch.randn(3))
