import math

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

from glid_mm.models.algorithms.m3i import M3I

TINY_CHANNELS = 32  # conftest's tiny ViT


@pytest.fixture
def build(tiny_m3i_cfg):

    def _build(**overrides):
        from mmpretrain.registry import MODELS
        model = MODELS.build(tiny_m3i_cfg(**overrides))
        model.init_weights()
        return model

    return _build


def _backward(model, batch):
    inputs, samples = batch
    losses = model.loss(inputs, samples)
    sum(losses.values()).backward()
    return losses


@pytest.mark.parametrize(
    'overrides,keys',
    [
        (dict(), {'loss_intra', 'loss_inter', 'loss_cls'}),
        (dict(mixer=None, loss_weights=dict(inter=1., cls=1.)),
         {'loss_inter', 'loss_cls'}),  # Table 3 "w/o mix"
        (dict(mixer=None), {'loss_intra', 'loss_inter', 'loss_cls'}),
    ])
def test_every_trainable_parameter_gets_a_gradient(mmpretrain_scope, build,
                                                   tiny_batch, overrides,
                                                   keys):
    torch.manual_seed(0)
    model = build(**overrides)
    losses = _backward(model, tiny_batch())
    assert set(losses) == keys
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
            assert p.grad.abs().sum() > 0, name
        else:  # momentum encoder (and MAEViT's fixed pos_embed)
            assert p.grad is None, name
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert {n
            for n in frozen if not n.startswith('target_generator.')
            } == {'backbone.pos_embed'}


@pytest.mark.parametrize('groups', [('intra', ), ('inter', ), ('cls', ),
                                    ('intra', 'cls'), ('inter', 'cls')])
def test_each_group_can_be_switched_off(mmpretrain_scope, build, tiny_batch,
                                        groups):
    overrides = dict(loss_weights={g: 2.0 for g in groups})
    if 'cls' not in groups:
        overrides['head'] = None
    if not {'intra', 'inter'} & set(groups):
        overrides['neck'] = None
    model = build(**overrides)
    assert (model.head is None) == ('cls' not in groups)
    assert (model.neck is None) == (not {'intra', 'inter'} & set(groups))
    losses = _backward(model, tiny_batch())
    assert set(losses) == {f'loss_{g}' for g in groups}


def test_loss_weights_scale_the_groups(mmpretrain_scope, build, tiny_batch):
    inputs, samples = tiny_batch()
    out = {}
    for w in (1.0, 3.0):
        torch.manual_seed(0)
        model = build(loss_weights=dict(intra=w, inter=1.0, cls=1.0))
        torch.manual_seed(1)
        with torch.no_grad():
            out[w] = model.loss(inputs, samples)
    assert out[3.0]['loss_intra'].item() == pytest.approx(
        3 * out[1.0]['loss_intra'].item(), rel=1e-5)
    assert out[3.0]['loss_inter'].item() == pytest.approx(
        out[1.0]['loss_inter'].item(), rel=1e-5)


def test_momentum_encoder_moves_by_the_ema_rule(mmpretrain_scope, build,
                                                tiny_batch):
    """EMA: t <- m t + (1 - m) online, m from 0.995 to 1 (cosine)."""
    hub = mmpretrain_scope
    max_iters = hub.get_info('max_iters')
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ema = model.target_generator.module
    batch = tiny_batch()
    _backward(model, batch)  # first update copies the online encoder
    for (n, t), (_, o) in zip(ema.named_parameters(),
                              model.backbone.named_parameters()):
        assert torch.equal(t, o), n
    opt.step()
    opt.zero_grad()
    before = {n: p.detach().clone() for n, p in ema.named_parameters()}
    online = {
        n: p.detach().clone()
        for n, p in model.backbone.named_parameters()
    }
    assert any(not torch.equal(before[n], online[n]) for n in before)
    _backward(model, batch)  # second update: step 1 of the schedule
    m = 1. - (1. - 0.995) * (math.cos(math.pi * 1 / max_iters) + 1) / 2
    moved = 0
    for n, p in ema.named_parameters():
        expected = m * before[n] + (1 - m) * online[n]
        assert torch.allclose(p, expected, atol=1e-6), n
        moved += int(not torch.equal(p, before[n]))
    assert moved > 0


def test_targets_come_from_the_momentum_encoder(mmpretrain_scope, build,
                                                tiny_batch):
    torch.manual_seed(0)
    model = build()
    inputs, samples = tiny_batch()
    out = []
    with torch.no_grad():
        for perturb in (False, False, True):
            if perturb:
                for p in model.target_generator.parameters():
                    p.add_(torch.randn_like(p))
            torch.manual_seed(5)  # same mix
            out.append(model.loss(inputs, samples))
    # the online encoder did not move: the EMA step keeps the targets (to
    # float rounding: oneDNN may pick another kernel on a repeated call)
    same = dict(rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out[0]['loss_inter'], out[1]['loss_inter'],
                               **same)
    torch.testing.assert_close(out[0]['loss_cls'], out[1]['loss_cls'], **same)
    # perturbing the momentum encoder changes the dense losses only
    assert not torch.allclose(out[1]['loss_inter'], out[2]['loss_inter'])
    assert not torch.allclose(out[1]['loss_intra'], out[2]['loss_intra'])
    torch.testing.assert_close(out[1]['loss_cls'], out[2]['loss_cls'], **same)


def test_unlabelled_batch_and_extract_feat(mmpretrain_scope, build,
                                           tiny_batch):
    model = build()
    losses = _backward(model, tiny_batch(labels=False))
    assert losses['loss_cls'].item() == 0.
    feats = model.extract_feat(torch.randn(2, 3, 32, 32))
    assert feats[0].shape == (2, 1 + 4, TINY_CHANNELS)


class _HashTextEncoder(nn.Module):
    """Test-only text encoder: embedding bag over character codes."""

    def __init__(self, dims=8):
        super().__init__()
        self.embed = nn.EmbeddingBag(128, dims)

    def forward(self, texts):
        codes = [torch.tensor([ord(c) % 128 for c in t]) for t in texts]
        offsets = torch.tensor([0] + [len(c) for c in codes[:-1]]).cumsum(0)
        return self.embed(torch.cat(codes), offsets)


def test_text_group_with_a_user_encoder(mmpretrain_scope, build, tiny_batch):
    from mmpretrain.registry import MODELS
    MODELS.register_module(
        '_M3ITestTextEncoder', module=_HashTextEncoder, force=True)
    model = build(
        loss_weights=dict(inter=1., text=1.),
        head=None,
        text_encoder=dict(type='_M3ITestTextEncoder', dims=8),
        text_head=dict(
            type='M3IAttentionPoolHead',
            in_channels=TINY_CHANNELS,
            num_classes=8,
            num_heads=2))
    inputs, samples = tiny_batch()
    for i, s in enumerate(samples):
        s.set_field(['an ant', 'a bee', 'two ants', 'a wasp'][i], 'gt_caption')
    losses = _backward(model, (inputs, samples))
    assert set(losses) == {'loss_inter', 'loss_text'}
    assert model.text_encoder.embed.weight.grad is not None
    assert model.logit_scale.grad is not None
    del samples[0].gt_caption
    with pytest.raises(KeyError, match="'gt_caption'"):
        model.loss(inputs, samples)


@pytest.mark.parametrize('overrides,error,match', [
    (dict(loss_weights=dict(intra=1., mim=1.)), ValueError, 'unknown'),
    (dict(loss_weights=dict(intra=-1.)), ValueError, '>= 0'),
    (dict(loss_weights=dict(intra=0., inter=0., cls=0.)), ValueError,
     'every loss weight is 0'),
    (dict(loss_weights=[1., 1.]), TypeError, 'dict'),
    (dict(loss_weights=dict(intra=1., inter=1.)), ValueError,
     "head is given but loss group 'cls' is off"),
    (dict(neck=None), ValueError, "'intra'/'inter' is on but neck=None"),
    (dict(loss_weights=dict(text=1.), neck=None,
          head=None), ValueError, 'no text encoder ships with glid_mm'),
    (dict(momentum=1.5), ValueError, 'momentum'),
    (dict(neg_weight=-0.1), ValueError, 'neg_weight'),
    (dict(
        backbone=dict(
            type='VisionTransformer',
            arch='deit-tiny',
            img_size=32,
            patch_size=16,
            out_type='raw')), TypeError, 'MAEViT'),
    (dict(
        backbone=dict(
            type='MAEViT',
            arch='deit-tiny',
            img_size=32,
            patch_size=16,
            out_type='cls_token')), ValueError, 'out_type'),
    (dict(
        head=dict(
            type='M3IAttentionPoolHead',
            in_channels=16,
            num_classes=3,
            num_heads=2)), ValueError, 'head.in_channels=16'),
    (dict(mixer=dict(type='M3IMixer', patch_size=8)), ValueError,
     'multiple of the encoder patch size 16'),
])
def test_bad_arguments(mmpretrain_scope, build, tiny_batch, overrides, error,
                       match):
    with pytest.raises(error, match=match):
        build(**overrides)


def test_bad_inputs(mmpretrain_scope, build, tiny_batch):
    model = build()
    inputs, samples = tiny_batch()
    with pytest.raises(ValueError, match='input views, target views'):
        model.loss(inputs[0], samples)
    for s in samples:
        del s.m3i_boxes
    with pytest.raises(KeyError, match='m3i_boxes'):
        model.loss(inputs, samples)


def test_needs_max_iters_for_the_momentum_schedule(build, tiny_batch):
    from mmengine.registry import DefaultScope

    import glid_mm  # noqa: F401
    MessageHub.get_instance('test-m3i-no-max-iters')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = build()
    with pytest.raises(RuntimeError, match="'max_iters'"):
        model.loss(*tiny_batch())
    assert isinstance(model, M3I)


def test_category_term_is_summed_over_the_mixed_images(mmpretrain_scope, build,
                                                       tiny_batch):
    """Eq. 4 sums every target: each image of a mixed input adds its own
    category loss (not their mean)."""
    torch.manual_seed(0)
    model = build()
    inputs, samples = tiny_batch()
    calls = []
    head_loss = model.head.loss

    def recording(tokens, labels):
        loss = head_loss(tokens, labels)
        calls.append(loss.detach())
        return loss

    model.head.loss = recording
    losses = model.loss(inputs, samples)
    assert len(calls) == 2  # image k's tokens, image j's tokens
    torch.testing.assert_close(losses['loss_cls'].detach(), sum(calls))
    model = build(loss_weights=dict(intra=1., inter=1., cls=0.5))
    model.head.loss = recording
    calls.clear()
    torch.testing.assert_close(
        model.loss(inputs, samples)['loss_cls'].detach(), 0.5 * sum(calls))


def test_encoder_mask_ratio_is_refused_with_the_mixer(mmpretrain_scope, build,
                                                      tiny_m3i_cfg):
    backbone = tiny_m3i_cfg()['backbone']
    with pytest.raises(ValueError, match='mask_ratio=0.6 has no effect'):
        build(backbone=dict(backbone, mask_ratio=0.6))
    assert build(mixer=None).backbone.mask_ratio == 0.5


@pytest.mark.parametrize('target_views, forwards', [('shared', 1),
                                                    ('separate', 2)])
def test_target_scheme(mmpretrain_scope, build, tiny_batch, target_views,
                       forwards):
    """Sec. 3.3: the first image of a mix shows its own target view, so the
    momentum encoder runs once per image (N forwards); 'separate' keeps
    the input views and needs 2N."""
    torch.manual_seed(0)
    model = build(target_views=target_views)
    (x, y), samples = tiny_batch()
    seen = []
    targets = model._targets

    def recording(images):
        seen.append(images.detach().clone())
        return targets(images)

    model._targets = recording
    shown = []
    mixer = model.mixer.__class__.__call__

    def recording_mixer(self, inputs, generator=None, partners=None):
        shown.append((inputs, partners))
        return mixer(self, inputs, generator, partners)

    model.mixer.__class__.__call__ = recording_mixer
    try:
        losses = model.loss([x, y], samples)
    finally:
        model.mixer.__class__.__call__ = mixer
    assert {'loss_intra', 'loss_inter'} <= set(losses)
    assert len(seen) == 1 and seen[0].shape[0] == forwards * x.shape[0]
    inputs, partners = shown[0]
    if target_views == 'shared':
        assert torch.equal(seen[0], y)
        assert torch.equal(inputs, y) and torch.equal(partners, x)
    else:
        assert torch.equal(seen[0], torch.cat([x, y]))
        assert torch.equal(inputs, x) and partners is None
    with pytest.raises(ValueError, match='target_views'):
        build(target_views='both')


def test_mixer_takes_partner_views():
    from glid_mm.models.layers.m3i_mixer import M3IMixer
    mixer = M3IMixer(patch_size=2, mix_ratio=0.5)
    own, other = torch.zeros(3, 1, 4, 4), torch.ones(3, 1, 4, 4)
    mixed, mask, sigma = mixer(own, partners=other)
    pixel = mask.repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert torch.equal(mixed[:, 0], pixel.float())
    with pytest.raises(ValueError, match='partners'):
        mixer(own, partners=torch.ones(3, 1, 2, 2))
