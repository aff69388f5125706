"""BiFPN: shapes, fast normalised fusion, gradients, argument errors."""
import pytest
import torch

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
    dead = [n for n, p in neck.named_parameters()
            if p.grad is None or not p.grad.abs().sum() > 0]
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
