"""GLIDMaskPredictor: the one-linear-layer mask classification of eq. 4."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.models.decoders.glid_decoded import build_query_decoder
from glid_mm.models.heads import GLIDMaskPredictor

# supp. Table 3 (parameters of each task head)
TABLE3 = {'semseg': 0.9e6, 'insseg': 0.6e6, 'panseg': 0.9e6}


def test_shapes_with_and_without_layer_dim():
    pred = GLIDMaskPredictor(num_classes=5, in_channels=16, mask_channels=8)
    feat = torch.randn(2, 8, 6, 10)
    cls, masks = pred(torch.randn(3, 2, 7, 16), feat)
    assert cls.shape == (3, 2, 7, 6)  # K + 1 (no object)
    assert masks.shape == (3, 2, 7, 6, 10)
    cls, masks = pred(torch.randn(2, 7, 16), feat)
    assert cls.shape == (2, 7, 6)
    assert masks.shape == (2, 7, 6, 10)


def test_mask_is_sigmoid_of_dot_product_eq4():
    """S = sigmoid(<f^b, f^s>), worked out by hand on a 1x2 map."""
    pred = GLIDMaskPredictor(num_classes=1, in_channels=2, mask_channels=2)
    with torch.no_grad():
        # rows 0-1: class logits, rows 2-3: mask embedding f^s
        pred.fc.weight.copy_(
            torch.tensor([[1., 0.], [0., 1.], [2., 0.], [0., -1.]]))
        pred.fc.bias.copy_(torch.tensor([0., 0., 0., 1.]))
    state = torch.tensor([[[[3., 4.]]]])  # [L=1, B=1, Q=1, C=2]
    # f^s = (2 * 3, -4 + 1) = (6, -3); f^b at pixel 0: (1, 2), pixel 1:
    # (0.5, -1) -> dots 6 - 6 = 0 and 3 + 3 = 6
    fb = torch.tensor([[1., 0.5], [2., -1.]]).view(1, 2, 1, 2)
    cls, mask_logits = pred(state, fb)
    assert torch.equal(cls[0, 0, 0], torch.tensor([3., 4.]))
    assert torch.allclose(mask_logits[0, 0, 0, 0], torch.tensor([0., 6.]))
    # eq. 4's sigmoid: 0.5 where the dot is 0, 1 / (1 + e^-6) where it is 6
    assert torch.allclose(mask_logits.sigmoid()[0, 0, 0, 0],
                          torch.tensor([0.5, 1 / (1 + math.exp(-6))]))


def test_matches_explicit_loop_on_random_input():
    torch.manual_seed(0)
    pred = GLIDMaskPredictor(num_classes=3, in_channels=8, mask_channels=4)
    states, fb = torch.randn(2, 1, 5, 8), torch.randn(1, 4, 3, 2)
    _, masks = pred(states, fb)
    emb = pred.fc(states)[..., 4:]
    for layer in range(2):
        for q in range(5):
            for y in range(3):
                for x in range(2):
                    dot = (emb[layer, 0, q] * fb[0, :, y, x]).sum()
                    assert torch.allclose(
                        masks[layer, 0, q, y, x], dot, atol=1e-6)


@pytest.mark.parametrize('key,value', [('num_classes', 0), ('in_channels', -1),
                                       ('mask_channels', 2.5)])
def test_bad_arguments(key, value):
    kwargs = dict(num_classes=3, in_channels=8, mask_channels=4)
    kwargs[key] = value
    with pytest.raises(ValueError, match=key):
        GLIDMaskPredictor(**kwargs)


def test_bad_inputs():
    pred = GLIDMaskPredictor(num_classes=3, in_channels=8, mask_channels=4)
    with pytest.raises(ValueError, match='query_states'):
        pred(torch.randn(2, 5, 7), torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match='mask_feature'):
        pred(torch.randn(2, 5, 8), torch.randn(2, 6, 3, 3))  # channels
    with pytest.raises(ValueError, match='mask_feature'):
        pred(torch.randn(2, 5, 8), torch.randn(3, 4, 3, 3))  # batch


def test_build_query_decoder_takes_num_queries_from_head():
    init_default_scope('mmdet')
    cfg = dict(
        type='GLIDDecoder',
        in_channels=8,
        embed_dims=16,
        num_layers=3,
        num_heads=2,
        feedforward_channels=32)
    dec = build_query_decoder(cfg, num_queries=7)
    assert dec.queries.num_queries == 7
    assert 'num_queries' not in cfg  # the caller's dict is not modified
    assert build_query_decoder(dict(cfg, num_queries=7), 7) is not None
    with pytest.raises(ValueError, match='num_queries=5'):
        build_query_decoder(dict(cfg, num_queries=5), 7)
    with pytest.raises(TypeError, match='decoder'):
        build_query_decoder(dict(in_channels=8), 7)


@pytest.mark.parametrize('task,head_key,num_classes', [
    ('semseg', 'decode_head', 150),
    ('insseg', 'panoptic_head', 100),
    ('panseg', 'panoptic_head', 150),
])
def test_head_sizes_of_ade20k_configs(project_root, task, head_key,
                                      num_classes):
    """Measured new-parameter count of each task head vs supp. Table 3."""
    cfg = Config.fromfile(
        osp.join(project_root, 'configs', 'glid',
                 f'glid-{task}_swin-b_8xb2-160k_ade20k-640x640.py'))
    init_default_scope(cfg.default_scope)
    head_cfg = cfg.model[head_key]
    if cfg.default_scope == 'mmdet':
        head_cfg = dict(head_cfg, train_cfg=cfg.model.train_cfg)
    from glid_mm.registry import build_model
    head = build_model(head_cfg)
    n = sum(p.numel() for p in head.parameters())
    # one linear layer 512 -> K + 1 + 256, nothing else in the head
    assert n == sum(p.numel() for p in head.predictor.parameters())
    assert n == 512 * (num_classes + 1 + 256) + num_classes + 1 + 256
    print(f'{task}: {n:,} parameters (supp. Table 3: '
          f'{TABLE3[task] / 1e6:.1f} M)')
