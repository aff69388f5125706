"""BiFPN speaks mmdet / mmseg FPN's interface (num_outs, start_level,
end_level, add_extra_convs, relu_before_extra_convs); extra levels take part
in the bidirectional fusion (EfficientDet's P6 / P7)."""
import pytest
import torch

import glid_mm  # noqa: F401
from glid_mm.models.necks import BiFPN

RESNET = [16, 32, 64, 128]  # a narrow ResNet's C2..C5


def _inputs(image=256, batch=2):
    """C2..C5 of an ``image`` px input (strides 4..32)."""
    torch.manual_seed(0)
    return [
        torch.randn(batch, c, image // 2**(i + 2), image // 2**(i + 2))
        for i, c in enumerate(RESNET)
    ]


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_glid_use_is_unchanged():
    """Four levels from 1/4, no extras: the same modules and parameter
    count as before the FPN arguments existed (5.02 M at Swin-B width)."""
    neck = BiFPN([128, 256, 512, 1024], 256, num_repeats=11)
    assert neck.num_outs == 4 and len(neck.extra_convs) == 0
    assert _n_params(neck) == 5_021_850


@pytest.mark.parametrize('extra',
                         [False, True, 'on_input', 'on_lateral', 'on_output'])
def test_retinanet_levels_p3_to_p7(extra):
    """RetinaNet: C3..C5 (start_level=1) + 2 extra levels = 5 outputs at
    strides 8..128 of a 256 px image."""
    neck = BiFPN(
        RESNET,
        8,
        num_repeats=2,
        start_level=1,
        num_outs=5,
        add_extra_convs=extra,
        relu_before_extra_convs=True)
    outs = neck(_inputs(256))
    assert [tuple(o.shape) for o in outs] == [(2, 8, 256 // s, 256 // s)
                                              for s in (8, 16, 32, 64, 128)]
    assert len(neck.extra_convs) == (2 if extra else 0)
    if extra in (True, 'on_input'):
        assert neck.extra_convs[0].conv.in_channels == 128  # C5
    # the extra levels are fused into the finest output (top-down path)
    outs[0].sum().backward()
    if extra:
        assert neck.extra_convs[1].conv.weight.grad.abs().sum() > 0
    fused = neck.blocks[0].td_fuse[0].weight.grad  # P7 -> P6 node
    assert fused is not None and fused.abs().sum() > 0


def test_mask_rcnn_num_outs_5_and_end_level():
    neck = BiFPN(RESNET, 8, num_repeats=1, num_outs=5)
    outs = neck(_inputs(256))
    assert [o.shape[-1] for o in outs] == [64, 32, 16, 8, 4]
    neck = BiFPN(RESNET, 8, num_repeats=1, start_level=0, end_level=2)
    assert len(neck(_inputs(256))) == 3
    assert len(neck.lateral_convs) == 3


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_outs=2, start_level=1), 'num_outs=2 is below'),
    (dict(add_extra_convs='on_top', num_outs=5), 'add_extra_convs'),
    (dict(start_level=3, end_level=1), 'start_level=3'),
    (dict(start_level=3), 'at least 2 levels'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BiFPN(RESNET, 8, **kwargs)
