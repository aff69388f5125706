"""The shared GLID wiring: GLIDDecoded, build_query_decoder,
check_query_feat, check_neck_feats (glid_decoded) and GLIDWiringMixin
(glid_wiring), on a toy model
(identity backbone, a 1x1-conv neck) and a tiny real GLIDDecoder."""
import importlib

import pytest
import torch
import torch.nn as nn

import glid_mm  # noqa: F401
from glid_mm.models.decoders.glid_decoded import (GLIDDecoded,
                                                  build_query_decoder,
                                                  check_neck_feats,
                                                  check_query_feat)
from glid_mm.models.decoders.glid_wiring import GLIDWiringMixin

IN, C, Q = 8, 16, 5


def _decoder_cfg(**kwargs):
    cfg = dict(
        type='GLIDDecoder',
        in_channels=IN,
        embed_dims=C,
        num_layers=3,
        num_heads=2,
        feedforward_channels=32)
    cfg.update(kwargs)
    return cfg


def _pyramid(batch=2, size=32):
    return [
        torch.randn(batch, IN, size // 2**i, size // 2**i) for i in range(4)
    ]


class _Backbone(nn.Module):
    """Images [B, 3, H, W] -> four levels [B, IN, H / 2^i, W / 2^i]."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, IN, 1)

    def forward(self, x):
        x = self.proj(x)
        return [nn.functional.avg_pool2d(x, 2**i) for i in range(4)]


class _Neck(nn.Module):

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(IN, IN, 1) for _ in range(4))

    def forward(self, feats):
        return [conv(f) for conv, f in zip(self.convs, feats)]


class _Head(nn.Module):

    def __init__(self, num_queries=Q):
        super().__init__()
        self.num_queries = num_queries
        self.fc = nn.Linear(C, 3)


class _Toy(GLIDWiringMixin, nn.Module):
    """What a toolbox base class builds (backbone, neck, head) + the mixin."""

    def __init__(self, decoder=None, head=None):
        super().__init__()
        self.backbone = _Backbone()
        self.neck = _Neck()
        self.head = head if head is not None else _Head()
        if decoder is not None:
            self.build_glid_decoder(decoder, 'head')


class _FakeDecoder(nn.Module):
    """Records its call; query states [L=2, B, Q, C] from the coarsest
    level's mean, so the result depends on ``feats``."""

    def forward(self, feats, **kwargs):
        self.called = (feats, kwargs)
        B = feats[0].shape[0]
        m = feats[-1].mean((1, 2, 3))
        return dict(query_states=m.view(1, B, 1, 1).expand(2, B, Q, C))


@pytest.fixture
def mmdet_scope():
    pytest.importorskip('mmdet')
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')


# ------------------------------------------------------------ helpers
def test_glid_decoded_is_a_named_pair():
    feats, states = (torch.zeros(1, 2, 3, 3), ), torch.zeros(2, 1, 4, 6)
    x = GLIDDecoded(feats, states)
    assert x.feats is feats and x.query_states is states
    assert x._fields == ('feats', 'query_states')
    f, s = x
    assert f is feats and s is states


def test_build_query_decoder_takes_num_queries_from_head(mmdet_scope):
    cfg = _decoder_cfg()
    dec = build_query_decoder(cfg, num_queries=7)
    assert dec.queries.num_queries == 7
    assert 'num_queries' not in cfg  # the caller's dict is untouched
    with pytest.raises(ValueError, match='num_queries=5'):
        build_query_decoder(_decoder_cfg(num_queries=5), 7)
    with pytest.raises(TypeError, match='"type"'):
        build_query_decoder(dict(in_channels=IN), 7)


def test_check_query_feat_accepts_good_and_names_bad_inputs():
    feat = torch.zeros(2, 4, 8, 8)
    assert check_query_feat(torch.zeros(3, 2, Q, C), feat, Q, C, 4) is None
    with pytest.raises(ValueError, match=r'num_keypoints'):
        check_query_feat(
            torch.zeros(3, 2, Q + 1, C),
            feat,
            Q,
            C,
            4,
            queries_name='num_keypoints')
    with pytest.raises(ValueError, match='feat_channels'):
        check_query_feat(
            torch.zeros(3, 2, Q, C), torch.zeros(2, 5, 8, 8), Q, C, 4)
    with pytest.raises(ValueError, match='batch of query_states'):
        check_query_feat(
            torch.zeros(3, 2, Q, C), torch.zeros(1, 4, 8, 8), Q, C, 4)


def test_check_neck_feats():
    feats = _pyramid()
    out = check_neck_feats(feats)
    assert isinstance(out, tuple)
    assert all(a is b for a, b in zip(out, feats))
    with pytest.raises(ValueError, match='no feature level'):
        check_neck_feats([])
    with pytest.raises(ValueError, match='level 1 must be'):
        check_neck_feats([feats[0], feats[1][0]])
    with pytest.raises(ValueError, match='level 2 has batch 1'):
        check_neck_feats([feats[0], feats[1], feats[2][:1]])


# -------------------------------------------------------------- mixin
def test_mixin_builds_decoder_with_head_queries(mmdet_scope):
    model = _Toy(_decoder_cfg(), head=_Head(num_queries=7))
    assert model.decoder.queries.num_queries == 7
    assert isinstance(model.decoder, nn.Module)
    # the mixin adds no state of its own: the usual top-level names only
    prefixes = {k.split('.')[0] for k in model.state_dict()}
    assert prefixes == {'backbone', 'neck', 'head', 'decoder'}
    with pytest.raises(ValueError, match='num_queries=5'):
        _Toy(_decoder_cfg(num_queries=5), head=_Head(num_queries=7))


def test_mixin_rejects_a_head_without_queries(mmdet_scope):
    model = _Toy()
    model.head = nn.Linear(2, 2)
    with pytest.raises(
            TypeError, match='head must be a GLID query head '
            'with num_queries'):
        model.build_glid_decoder(_decoder_cfg(), 'head')
    with pytest.raises(TypeError, match='num_queries / one2many'):
        model.build_glid_decoder(
            _decoder_cfg(),
            'head',
            queries_attr='num_queries_total',
            requirement='num_queries / one2many')
    assert not hasattr(model, 'decoder')


def test_glid_decode_passes_kwargs_and_checks_feats():
    model = _Toy()
    model.decoder = _FakeDecoder()
    feats = _pyramid(batch=3)
    mask = torch.zeros(3, 32, 32, dtype=torch.bool)
    out = model.glid_decode(feats, padding_mask=mask)
    assert isinstance(out, GLIDDecoded)
    assert isinstance(out.feats, tuple) and out.feats[2] is feats[2]
    assert out.query_states.shape == (2, 3, Q, C)
    assert model.decoder.called[1] == dict(padding_mask=mask)
    with pytest.raises(ValueError, match='level 3 has batch 2'):
        model.glid_decode(feats[:3] + [feats[3][:2]])


def test_glid_extract_feat_is_backbone_neck_decoder(mmdet_scope):
    torch.manual_seed(0)
    model = _Toy(_decoder_cfg()).eval()
    images = torch.randn(2, 3, 32, 32)
    x = model.glid_extract_feat(images)
    assert isinstance(x, GLIDDecoded)
    assert [f.shape for f in x.feats] == [(2, IN, 32 // 2**i, 32 // 2**i)
                                          for i in range(4)]
    assert x.query_states.shape == (3, 2, Q, C)  # [L, B, Q, C]
    # the same as running the three by hand
    feats = model.neck(model.backbone(images))
    assert all(torch.equal(a, b) for a, b in zip(x.feats, feats))
    ref = model.decoder(tuple(feats))['query_states']
    assert torch.equal(x.query_states, ref)
    assert torch.equal(model.glid_neck_feats(images)[0], feats[0])


# ---------------------------------------------------- the five models
MODELS = [
    ('mmdet', 'glid_mm.models.detectors.glid_maskformer', 'GLIDMaskFormer'),
    ('mmdet', 'glid_mm.models.detectors.glid_multitask_maskformer',
     'GLIDMultiTaskMaskFormer'),
    ('mmdet', 'glid_mm.models.detectors.glid_detr', 'GLIDDETR'),
    ('mmseg', 'glid_mm.models.segmentors.glid_encoder_decoder',
     'GLIDEncoderDecoder'),
    ('mmseg', 'glid_mm.models.segmentors.glid_depth_estimator',
     'GLIDDepthEstimator'),
    ('mmpose', 'glid_mm.models.pose_estimators.glid_topdown',
     'GLIDTopdownPoseEstimator'),
]


@pytest.mark.parametrize(
    'toolbox,module,name', MODELS, ids=[m[2] for m in MODELS])
def test_every_glid_model_uses_the_mixin(toolbox, module, name):
    pytest.importorskip(toolbox)
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, GLIDWiringMixin)
    assert issubclass(cls, nn.Module)
    # the mixin comes before the toolbox base class
    mro = cls.__mro__
    toolbox_bases = [c for c in mro if c.__module__.startswith(toolbox)]
    assert mro.index(GLIDWiringMixin) < mro.index(toolbox_bases[0])
