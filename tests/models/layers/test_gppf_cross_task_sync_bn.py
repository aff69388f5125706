"""CrossTaskSyncBN without a process group: plain BatchNorm.

The cross-process behaviour (statistics over both processes, agreeing
running statistics) is tested with 2 gloo processes in
tests/engine/model_wrappers/test_gppf_simt_wrapper.py.
"""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

import glid_mm  # noqa: F401
from glid_mm.models.layers.gppf_cross_task_sync_bn import CrossTaskSyncBN


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


def test_checkpointing_in_one_process_matches_plain():
    """``checkpoint_sync_bn`` without a process group (one-GPU runs of the
    GPPF configs): the rerun saves what the forward saved (else
    non-reentrant checkpointing refuses it), gradients and running
    statistics equal the plain forward's, and a second backward through
    the same graph (retain_graph) reruns again."""
    import torch.nn as nn

    from glid_mm.models.layers.gppf_cross_task_sync_bn import (
        CrossTaskSyncBN, checkpoint_sync_bn)
    runs = []
    for cp in (False, True):
        torch.manual_seed(0)
        unit = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), CrossTaskSyncBN(4), nn.ReLU(),
            nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
        x = torch.randn(2, 2, 5, 5, requires_grad=True)
        out = checkpoint_sync_bn(unit, x) if cp else unit(x)
        out.pow(2).mean().backward(retain_graph=True)
        grads = [p.grad.clone() for p in unit.parameters()]
        if cp:
            out.pow(2).mean().backward()  # a second rerun of the region
        runs.append((grads, {
            k: v.clone()
            for k, v in unit.state_dict().items()
        }))
    (g0, s0), (g1, s1) = runs
    for a, b in zip(g0, g1):
        torch.testing.assert_close(a, b)
    for key in s0:
        torch.testing.assert_close(s0[key], s1[key], msg=key)
