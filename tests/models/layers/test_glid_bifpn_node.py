"""separable_node: one Bi-FPN node that keeps only its inputs and output.

tests/models/necks/test_bifpn.py runs whole BiFPNs with ``with_cp`` against
the plain ones (BN, BN with momentum=None, GN); here the function itself on
one node (fast normalised fusion of a same-size and a resized input, SiLU,
depthwise 3x3, 1x1 + norm): which path it takes (``_fusable``), that the
fused path saves nothing but the inputs and the output, gradients and BN
statistics against plain autograd with negative / tiny / zero BN weights,
inputs and parameters that need no gradient, and the fusion weights.
"""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import DepthwiseSeparableConvModule

from glid_mm.models.layers.glid_bifpn_node import (GAMMA_EPS, _fusable,
                                                   separable_node)
from glid_mm.models.necks.bifpn import WeightedFusion

C = 4


class _Node(nn.Module):
    """A BiFPN top-down node: ``pw(dw(silu(fuse([x, up(y)]))))``."""

    def __init__(self, norm_cfg=None, act_cfg=None, eps=1e-4):
        super().__init__()
        self.fuse = WeightedFusion(2, eps)
        self.conv = DepthwiseSeparableConvModule(
            C,
            C,
            3,
            padding=1,
            norm_cfg=norm_cfg or dict(type='BN'),
            act_cfg=act_cfg,
            dw_norm_cfg=None,
            dw_act_cfg=None)
        self.act = nn.SiLU()

    def pre(self, same, other):
        other = F.interpolate(other, size=same.shape[-2:], mode='nearest')
        return self.conv.depthwise_conv(self.act(self.fuse([same, other])))

    def pre_params(self):
        return [self.fuse.weight, *self.conv.depthwise_conv.parameters()]

    def forward(self, inputs, recompute):
        pw = self.conv.pointwise_conv
        if recompute:
            return separable_node(self.pre, self.pre_params(), pw, inputs)
        return pw(self.pre(*inputs))


def _pair(gamma=None, seed=0, **kwargs):
    """Two identical float64 nodes (reference, recomputing) in training
    mode, with random fusion weights, BN affine parameters and statistics."""
    torch.manual_seed(seed)
    node = _Node(**kwargs).double().train()
    with torch.no_grad():
        node.fuse.weight.copy_(torch.tensor([0.7, 1.6]))
        norm = node.conv.pointwise_conv.norm
        if norm.weight is not None:
            norm.weight.copy_(
                torch.randn(C) if gamma is None else torch.tensor(gamma))
            norm.bias.normal_()
        if getattr(norm, 'running_mean', None) is not None:
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.)
    return node, copy.deepcopy(node)


def _inputs(seed=1, grads=(True, True)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, C, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randn(2, C, 3, 3, generator=g, dtype=torch.float64)
    return [x.requires_grad_(grads[0]), y.requires_grad_(grads[1])]


def _run(node, recompute, inputs, weight):
    out = node(inputs, recompute)
    (out * weight).sum().backward()
    grads = {n: p.grad for n, p in node.named_parameters()}
    grads.update({f'input{i}': x.grad for i, x in enumerate(inputs)})
    return out, grads, {n: b.clone() for n, b in node.named_buffers()}


def _compare(ref, new, inputs_kw=None, skip=()):
    """Outputs, gradients and buffers of the two nodes of ``_pair``."""
    inputs_kw = inputs_kw or {}
    weight = torch.randn(
        2,
        C,
        6,
        6,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(2))
    r_out, r_grads, r_bufs = _run(ref, False, _inputs(**inputs_kw), weight)
    n_out, n_grads, n_bufs = _run(new, True, _inputs(**inputs_kw), weight)
    torch.testing.assert_close(n_out, r_out, rtol=1e-10, atol=1e-10)
    assert r_grads.keys() == n_grads.keys()
    for name in r_grads:
        if name in skip:
            continue
        if r_grads[name] is None:
            assert n_grads[name] is None, name
            continue
        torch.testing.assert_close(
            n_grads[name],
            r_grads[name],
            rtol=1e-8,
            atol=1e-10,
            msg=lambda m, n=name: f'{n}: {m}')
    for name in r_bufs:  # statistics updated once, as the plain node does
        torch.testing.assert_close(n_bufs[name], r_bufs[name])
    return n_grads


# ----------------------------------------------------------------------
# which path
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    'kwargs, train, fusable',
    [
        (dict(), True, True),
        (dict(), False, False),  # eval: BN uses running statistics
        (dict(norm_cfg=dict(type='BN', momentum=None)), True, True),
        (dict(norm_cfg=dict(type='BN', affine=False)), True, False),
        (dict(norm_cfg=dict(type='BN', track_running_stats=False)), True,
         False),
        (dict(norm_cfg=dict(type='GN', num_groups=2)), True, False),
        (dict(norm_cfg=dict(type='SyncBN')), True, False),
        (dict(act_cfg=dict(type='ReLU')), True, False),  # act after the norm
    ])
def test_fusable_conditions(kwargs, train, fusable):
    pw = _Node(**kwargs).train(train).conv.pointwise_conv
    assert _fusable(pw) is fusable


def test_conv_with_bias_is_not_fusable():
    pw = _Node().train().conv.pointwise_conv
    assert _fusable(pw)
    pw.conv.bias = nn.Parameter(torch.zeros(C))
    assert not _fusable(pw)


def _saved(fn):
    """The tensors autograd saves while ``fn`` runs."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, saved


def test_fused_path_saves_only_inputs_and_output():
    node, ref = _pair()
    inputs = _inputs()
    out, saved = _saved(lambda: node(inputs, True))
    assert len(saved) == 1 + len(inputs)
    ptrs = {t.data_ptr() for t in saved}
    assert ptrs == {out.data_ptr(), *(x.data_ptr() for x in inputs)}
    _, saved_ref = _saved(lambda: ref(_inputs(), False))
    assert len(saved_ref) > 6  # resize, fusion, act, dw, 1x1, BN maps...


@pytest.mark.parametrize('mode', ['no_grad', 'frozen'])
def test_nothing_to_differentiate_runs_the_plain_node(mode):
    """No graph to save: ``pw(pre(*inputs))`` directly, BN statistics
    updated once."""
    node, ref = _pair()
    if mode == 'frozen':
        node.requires_grad_(False)
        inputs = _inputs(grads=(False, False))
    else:
        inputs = _inputs()
    with torch.no_grad():
        expected = ref(_inputs(), False)
    if mode == 'no_grad':
        with torch.no_grad():
            out = node(inputs, True)
    else:
        out, saved = _saved(lambda: node(inputs, True))
        assert saved == []
    assert not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    norm = node.conv.pointwise_conv.norm
    assert int(norm.num_batches_tracked) == 1
    torch.testing.assert_close(norm.running_mean,
                               ref.conv.pointwise_conv.norm.running_mean)


# ----------------------------------------------------------------------
# the fused path against plain autograd
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    'gamma',
    [
        None,  # random signs
        [-1.5, -0.3, -2.0, -0.7],  # all negative: the sign is kept
        [1e-3, -1e-3, 2e-4, 1.0],  # small but above the clamp
    ])
@pytest.mark.parametrize('momentum', [0.1, None])
def test_fused_path_equals_plain_autograd(gamma, momentum):
    node, ref = _pair(gamma, norm_cfg=dict(type='BN', momentum=momentum))
    assert _fusable(node.conv.pointwise_conv)
    _compare(ref, node)
    norm = node.conv.pointwise_conv.norm
    assert int(norm.num_batches_tracked) == 1


def test_zero_bn_weight_is_clamped_not_divided_by():
    """gamma = 0 loses BN's input (y = beta): x_hat is recovered with
    |gamma| clamped to GAMMA_EPS, so everything stays finite; gradients of
    the inputs and of every other parameter are exact (that channel passes
    no gradient down, as in plain BN)."""
    assert GAMMA_EPS == 1e-5
    node, ref = _pair([0.0, 1.2, -0.8, 0.5])
    grads = _compare(ref, node, skip=('conv.pointwise_conv.bn.weight', ))
    g_gamma = grads['conv.pointwise_conv.bn.weight']
    assert torch.isfinite(g_gamma).all()
    ref_gamma = ref.conv.pointwise_conv.norm.weight.grad
    torch.testing.assert_close(
        g_gamma[1:], ref_gamma[1:], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize('grads', [(True, False), (False, True),
                                   (False, False)])
def test_inputs_without_grad_get_none(grads):
    """E.g. a frozen encoder's maps: only what needs a gradient gets one;
    the node's own parameters still train."""
    node, ref = _pair()
    assert _fusable(node.conv.pointwise_conv)
    out = _compare(ref, node, inputs_kw=dict(grads=grads))
    for i, needs in enumerate(grads):
        assert (out[f'input{i}'] is None) is (not needs)
    assert out['conv.pointwise_conv.conv.weight'] is not None


def test_frozen_pre_params_get_none():
    node, ref = _pair()
    for n in (node, ref):
        n.fuse.weight.requires_grad_(False)
        n.conv.depthwise_conv.conv.bias.requires_grad_(False)
    grads = _compare(ref, node)
    assert grads['fuse.weight'] is None
    assert grads['conv.depthwise_conv.conv.bias'] is None
    assert grads['conv.depthwise_conv.conv.weight'] is not None


@pytest.mark.parametrize('kwargs, train', [
    (dict(norm_cfg=dict(type='GN', num_groups=2)), True),
    (dict(), False),
    (dict(act_cfg=dict(type='ReLU')), True),
])
def test_fallback_recomputes_through_checkpoint(kwargs, train):
    node, ref = _pair(**kwargs)
    node.train(train)
    ref.train(train)
    assert not _fusable(node.conv.pointwise_conv)
    _compare(ref, node)


# ----------------------------------------------------------------------
# the node's fast normalised fusion (EfficientDet Sec. 3.3)
# ----------------------------------------------------------------------
def test_fusion_weights_are_non_negative_and_normalised():
    fuse = WeightedFusion(3, eps=1e-4)
    with torch.no_grad():
        fuse.weight.copy_(torch.tensor([2.0, -3.0, 0.5]))
    xs = [torch.full((1, 1, 2, 2), v) for v in (1.0, 100.0, 7.0)]
    w = F.relu(fuse.weight.detach())
    assert (w >= 0).all() and w[1] == 0
    expected = (2.0 * 1.0 + 0.5 * 7.0) / (2.5 + 1e-4)
    out = fuse(xs)
    assert out.shape == (1, 1, 2, 2)
    torch.testing.assert_close(out, torch.full_like(out, expected))
    # a convex combination (up to eps): within the inputs' range
    same = fuse([torch.ones(1, 1, 2, 2)] * 3)
    assert (same <= 1).all() and (same > 1 - 1e-3).all()


def test_negative_fusion_weight_gets_no_gradient_through_the_node():
    node, ref = _pair()
    for n in (node, ref):
        with torch.no_grad():
            n.fuse.weight.copy_(torch.tensor([1.3, -0.4]))
    grads = _compare(ref, node)
    assert grads['fuse.weight'][1] == 0  # relu: the input is switched off
    assert grads['fuse.weight'][0] != 0


def test_fusion_refuses_another_number_of_inputs():
    fuse = WeightedFusion(2)
    with pytest.raises(ValueError, match='WeightedFusion of 2 inputs got 3'):
        fuse([torch.zeros(1, 1, 2, 2)] * 3)


@pytest.mark.parametrize('size, other', [((6, 6), (3, 3)), ((5, 7), (3, 4))])
def test_output_shape_is_the_first_inputs(size, other):
    node, _ = _pair()
    x = torch.randn(2, C, *size, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, C, *other, dtype=torch.float64, requires_grad=True)
    out = node([x, y], True)
    assert out.shape == (2, C, *size)
    out.sum().backward()
    assert x.grad.shape == x.shape and y.grad.shape == y.shape
