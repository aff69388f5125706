"""BiFPN: outputs against a hand-built EfficientDet BiFPN, shapes, fast
normalised fusion, gradients, argument errors."""
import pytest
import torch
import torch.nn.functional as F

from glid_mm.models.necks import BiFPN
from glid_mm.models.necks.bifpn import WeightedFusion

IN_CH = [8, 16, 32, 64]


def _feats(size=32, batch=2):
    return [
        torch.randn(batch, c, size // 2**i, size // 2**i)
        for i, c in enumerate(IN_CH)
    ]


@pytest.mark.parametrize('size', [32, 40])
def test_shapes_keep_every_level_including_quarter_map(size):
    neck = BiFPN(IN_CH, out_channels=16, num_repeats=2)
    outs = neck(_feats(size))
    assert len(outs) == 4
    for i, out in enumerate(outs):
        s = size // 2**i
        assert out.shape == (2, 16, s, s)


def test_odd_sizes_follow_swin_ceil_downsampling():
    # Swin pads odd maps before merging: 15 -> 8 -> 4 -> 2
    feats = [torch.randn(1, c, s, s) for c, s in zip(IN_CH, [15, 8, 4, 2])]
    outs = BiFPN(IN_CH, 8, 1)(feats)
    assert [o.shape[-1] for o in outs] == [15, 8, 4, 2]


def test_fast_normalised_fusion():
    fuse = WeightedFusion(2, eps=0.)
    with torch.no_grad():
        fuse.weight.copy_(torch.tensor([3.0, -1.0]))  # relu -> [3, 0]
    a, b = torch.full((1, 1, 2, 2), 2.), torch.full((1, 1, 2, 2), 5.)
    assert torch.allclose(fuse([a, b]), a)
    with torch.no_grad():
        fuse.weight.copy_(torch.tensor([1.0, 1.0]))
    assert torch.allclose(fuse([a, b]), torch.full_like(a, 3.5))


def test_information_flows_both_ways():
    """The 1/4 output depends on the 1/32 input and vice versa."""
    neck = BiFPN(IN_CH, 8, 1).eval()
    feats = [f.requires_grad_() for f in _feats(32, 1)]
    outs = neck(feats)
    g_fine = torch.autograd.grad(outs[0].sum(), feats[3], retain_graph=True)
    g_coarse = torch.autograd.grad(outs[3].sum(), feats[0])
    assert g_fine[0].abs().sum() > 0
    assert g_coarse[0].abs().sum() > 0


def test_every_parameter_gets_gradient():
    neck = BiFPN(IN_CH, 8, 2)
    sum(o.square().mean() for o in neck(_feats(32))).backward()
    dead = [
        n for n, p in neck.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert dead == []


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=[8]), 'at least 2'),
    (dict(in_channels=IN_CH, out_channels=0), 'out_channels'),
    (dict(in_channels=IN_CH, num_repeats=0), 'num_repeats'),
    (dict(in_channels=[8, -1]), 'positive'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BiFPN(**kwargs)


def test_bad_inputs():
    neck = BiFPN(IN_CH, 8, 1)
    with pytest.raises(ValueError, match='expects 4 levels'):
        neck(_feats()[:3])
    bad = _feats()
    bad[1] = torch.randn(2, 5, 16, 16)
    with pytest.raises(ValueError, match=r'level 1 must be \[B, 16'):
        neck(bad)
    bad = _feats()
    bad[2] = torch.randn(2, 32, 16, 16)
    with pytest.raises(ValueError, match='fine to coarse'):
        neck(bad)


def _grads_and_outputs(seed=0, **kwargs):
    torch.manual_seed(seed)
    neck = BiFPN([8, 16, 32, 64], out_channels=16, num_repeats=2, **kwargs)
    neck.train().double()
    torch.manual_seed(seed + 1)
    feats = [
        torch.randn(2, c, s, s, dtype=torch.float64, requires_grad=True)
        for c, s in zip([8, 16, 32, 64], [16, 8, 4, 2])
    ]
    outs = neck(feats)
    weights = [torch.randn(o.shape, dtype=torch.float64) for o in outs]
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    grads = {n: p.grad for n, p in neck.named_parameters()}
    grads.update({f'input{i}': f.grad for i, f in enumerate(feats)})
    stats = {n: b.clone() for n, b in neck.named_buffers()}
    return outs, grads, stats


@pytest.mark.parametrize('kwargs', [
    dict(channels_last=False),
    dict(with_cp=True),
    dict(with_cp=True, norm_cfg=dict(type='GN', num_groups=4)),
    dict(with_cp=True, norm_cfg=dict(type='BN', momentum=None)),
])
def test_channels_last_and_recompute_change_nothing_but_cost(kwargs):
    """Same outputs, gradients and BN running statistics as the plain
    NCHW run that keeps every map (float64, so that the comparison is
    tight: with_cp recovers BN's input from its output, which in float32
    differs from the stored input by rounding, amplified by BN's backward
    to ~1e-4 relative)."""
    ref_kwargs = {k: v for k, v in kwargs.items() if k == 'norm_cfg'}
    ref_outs, ref_grads, ref_stats = _grads_and_outputs(
        channels_last=False, **ref_kwargs)
    outs, grads, stats = _grads_and_outputs(**kwargs)
    for a, b in zip(ref_outs, outs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert ref_grads.keys() == grads.keys()
    for name in ref_grads:
        if name.endswith('depthwise_conv.conv.bias') and not ref_kwargs:
            # a per-channel constant before the 1x1 conv + BN: its gradient
            # is zero up to rounding in both runs (not so under GN)
            assert ref_grads[name].abs().max() < 1e-8
            assert grads[name].abs().max() < 1e-8
            continue
        torch.testing.assert_close(
            ref_grads[name],
            grads[name],
            rtol=1e-9,
            atol=1e-10,
            msg=lambda m, n=name: f'{n}: {m}')
    # recomputation must not update the BN statistics a second time
    for name in ref_stats:
        torch.testing.assert_close(ref_stats[name], stats[name])


def test_outputs_are_channels_last_by_default():
    neck = BiFPN([8, 16], out_channels=8, num_repeats=1)
    outs = neck([torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)])
    assert outs[0].is_contiguous(memory_format=torch.channels_last)
    assert outs[0].shape == (1, 8, 8, 8)


@pytest.mark.parametrize('channels_last', [False, True])
def test_weighted_sum_gradients(channels_last):
    """The fusion's hand-written backward (dot-product weight gradients)
    against finite differences, in both memory layouts."""
    from glid_mm.models.necks.bifpn import _WeightedSum
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xs = [
        torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(
            memory_format=fmt).requires_grad_() for _ in range(3)
    ]
    w = torch.rand(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_WeightedSum.apply, (w, *xs))


# --- a hand-built EfficientDet BiFPN, written from the paper's wiring ------


def _bn(x, bn):
    """Eval-mode BatchNorm2d by hand."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def _max_pool_3x3_s2(x):
    """3x3 / stride 2 max pool, padding 1 (outside = -inf)."""
    x = F.pad(x, (1, 1, 1, 1), value=float('-inf'))
    return x.unfold(2, 3, 2).unfold(3, 3, 2).amax((-1, -2))


def _nearest(x, size):
    """Nearest resize: output cell ``i`` reads input cell
    ``floor(i * in / out)``."""
    (h, w), (oh, ow) = x.shape[-2:], size
    rows = torch.arange(oh) * h // oh
    cols = torch.arange(ow) * w // ow
    return x[:, :, rows][:, :, :, cols]


def _ref_node(fuse, conv, same, other, down):
    """Resize ``other`` to ``same[0]``'s grid (max pool first on the
    bottom-up path), fast normalised fusion, swish, depthwise 3x3, 1x1, BN.
    """
    if down:
        other = _max_pool_3x3_s2(other)
    other = _nearest(other, same[0].shape[-2:])
    w = fuse.weight.clamp(min=0)
    fused = sum(wi * x for wi, x in zip(w, same + [other]))
    fused = fused / (w.sum() + fuse.eps)
    x = fused * torch.sigmoid(fused)
    dw, pw = conv.depthwise_conv.conv, conv.pointwise_conv
    x = F.conv2d(x, dw.weight, dw.bias, padding=1, groups=x.shape[1])
    return _bn(F.conv2d(x, pw.conv.weight), pw.bn)


def _ref_block(block, p):
    """EfficientDet: ``P_i^td = node(P_i, up(P_{i+1}^td))`` from the top
    (``P_top^td = P_top``); ``P_0^out = P_0^td``; ``P_i^out = node(P_i,
    P_i^td, down(P_{i-1}^out))``, without ``P_i^td`` at the top level."""
    top = len(p) - 1
    td = {top: p[top]}
    for k, i in enumerate(range(top - 1, -1, -1)):
        td[i] = _ref_node(block.td_fuse[k], block.td_conv[k], [p[i]],
                          td[i + 1], False)
    out = [td[0]]
    for i in range(1, top + 1):
        same = [p[i], td[i]] if i < top else [p[i]]
        out.append(
            _ref_node(block.bu_fuse[i - 1], block.bu_conv[i - 1], same,
                      out[-1], True))
    return out


def _ref_bifpn(neck, inputs):
    """Laterals (1x1 conv + BN), FPN-style extra levels, the blocks."""
    used = inputs[neck.start_level:neck.end_level + 1]
    feats = [
        _bn(F.conv2d(x, lat.conv.weight, lat.conv.bias), lat.bn)
        for lat, x in zip(neck.lateral_convs, used)
    ]
    for k in range(neck.num_outs - len(used)):
        below = feats[-1]
        if not neck.add_extra_convs:
            feats.append(below[:, :, ::2, ::2])  # 1x1 max pool, stride 2
            continue
        if k == 0 and neck.add_extra_convs == 'on_input':
            source = used[-1]
        elif k > 0 and neck.relu_before_extra_convs:
            source = below.clamp(min=0)
        else:
            source = below
        conv = neck.extra_convs[k]
        feats.append(
            _bn(
                F.conv2d(
                    source,
                    conv.conv.weight,
                    conv.conv.bias,
                    stride=2,
                    padding=1), conv.bn))
    for block in neck.blocks:
        feats = _ref_block(block, feats)
    return feats


def _randomise(neck):
    """Fusion weights in [-0.5, 1.5] (some clipped by the ReLU), BN with
    its own statistics and affine terms, random conv biases."""
    torch.manual_seed(3)
    for m in neck.modules():
        if isinstance(m, WeightedFusion):
            m.weight.data.uniform_(-0.5, 1.5)
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.3)
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
        elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
            m.bias.data.normal_(0, 0.3)


# C2..C5 of a 128x96 image; the BiFPN uses C3..C5 (start_level=1)
RETINA_SIZES = [(32, 24), (16, 12), (8, 6), (4, 3)]


@pytest.mark.parametrize(
    'kwargs, sizes',
    [
        # odd maps that are not each other's ceil halves: the bottom-up
        # max pool (17 -> 9) is then resized (nearest) to the level (8)
        (dict(), [(17, 12), (8, 6), (3, 3), (2, 2)]),
        # two extra levels by 1x1 / stride-2 max pool (FPN's default)
        (dict(start_level=1, num_outs=5), RETINA_SIZES),
        # two extra levels by 3x3 / stride-2 convs, the first on C5
        (dict(
            start_level=1,
            num_outs=5,
            add_extra_convs='on_input',
            relu_before_extra_convs=True), RETINA_SIZES),
    ])
def test_outputs_equal_hand_built_efficientdet_bifpn(kwargs, sizes):
    """Every output level of a 2-block BiFPN (eval mode) equals the
    hand-built top-down / bottom-up wiring of EfficientDet's Fig. 2(d)."""
    torch.manual_seed(0)
    neck = BiFPN(IN_CH, 8, num_repeats=2, **kwargs).eval()
    _randomise(neck)
    fuse = torch.cat(
        [m.weight for m in neck.modules() if isinstance(m, WeightedFusion)])
    assert (fuse < 0).any() and (fuse > 0).any()
    inputs = [torch.randn(2, c, h, w) for c, (h, w) in zip(IN_CH, sizes)]
    with torch.no_grad():
        outs = neck(inputs)
        ref = _ref_bifpn(neck, inputs)
    assert len(outs) == len(ref) == neck.num_outs
    for i, (out, expected) in enumerate(zip(outs, ref)):
        torch.testing.assert_close(
            out,
            expected,
            rtol=1e-5,
            atol=1e-5,
            msg=lambda m, i=i: f'level {i}: {m}')
