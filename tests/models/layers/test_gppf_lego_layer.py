"""LegoLayer (GPPF eq. 1) and LegoStem on tiny conv units.

The layers inside LegoResNet (and on several processes) are tested in
``tests/models/backbones/test_gppf_lego_resnet.py`` and the SIMT tests."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from glid_mm.models.layers.gppf_lego_layer import LegoLayer, LegoStem


def _unit():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3))


def _layer(n=3, with_cp=False, seed=0):
    torch.manual_seed(seed)
    layer = LegoLayer([_unit() for _ in range(n)], with_cp=with_cp)
    layer.train()
    return layer


def _x(seed=1):
    torch.manual_seed(seed)
    return torch.randn(2, 2, 5, 4)


def _grads(module):
    return {
        k: None if p.grad is None else p.grad.clone()
        for k, p in module.named_parameters()
    }


def _tracked(layer):
    return [int(u[1].num_batches_tracked) for u in layer.units]


def test_num_units_and_empty():
    assert _layer(4).num_units == 4
    with pytest.raises(ValueError, match='at least one unit'):
        LegoLayer([])


def test_index_runs_only_that_unit():
    layer = _layer()
    x = _x()
    out = layer(x, index=1)
    ref = _layer()  # same seed: same weights
    torch.testing.assert_close(out, ref.units[1](x))
    assert _tracked(layer) == [0, 1, 0]
    out.sum().backward()
    grads = _grads(layer)
    assert all(grads[k] is not None for k in grads if k.startswith('units.1'))
    assert all(grads[k] is None for k in grads if not k.startswith('units.1'))


def test_index_run_all_runs_others_without_gradient():
    layer = _layer()
    x = _x()
    out = layer(x, index=2, run_all=True)
    torch.testing.assert_close(out, _layer()(x, index=2))
    assert _tracked(layer) == [1, 1, 1]  # every unit's BatchNorm ran
    out.sum().backward()
    grads = _grads(layer)
    assert all(grads[k] is not None for k in grads if k.startswith('units.2'))
    assert all(grads[k] is None for k in grads if not k.startswith('units.2'))


def test_soft_weights_mix_every_unit():
    layer = _layer()
    x = _x()
    weights = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
    out = layer(x, weights=weights)
    ref = _layer()
    outs = [ref.units[k](x) for k in range(3)]
    torch.testing.assert_close(
        out, sum(w * o for w, o in zip([0.2, 0.5, 0.3], outs)))
    out.sum().backward()
    # d out.sum() / d weights[k] = unit_k(x).sum()
    torch.testing.assert_close(weights.grad,
                               torch.stack([o.sum() for o in outs]).detach())
    assert all(g is not None and g.abs().sum() > 0
               for g in _grads(layer).values())
    assert _tracked(layer) == [1, 1, 1]


def test_hard_equals_dense_straight_through():
    """Hard mode: one-hot straight-through weights give the output and the
    controller gradient of the dense computation; the selected unit's
    parameters get the dense gradient and the others none."""
    logits = torch.tensor([0.1, 2.0, -0.5])
    torch.manual_seed(5)
    la = logits.clone().requires_grad_(True)
    wa = F.gumbel_softmax(la, tau=1.0, hard=True)
    torch.manual_seed(5)
    lb = logits.clone().requires_grad_(True)
    wb = F.gumbel_softmax(lb, tau=1.0, hard=True)
    assert torch.equal(wa, wb) and wa.sum() == 1
    k = int(wa.argmax())
    x = _x()
    target = torch.randn(2, 3, 5, 4)
    hard, dense = _layer(), _layer()
    out_h = hard(x, weights=wa, hard=True)
    out_d = dense(x, weights=wb, hard=False)
    torch.testing.assert_close(out_h, out_d)
    ((out_h - target)**2).sum().backward()
    ((out_d - target)**2).sum().backward()
    torch.testing.assert_close(la.grad, lb.grad)
    assert la.grad.abs().sum() > 0
    gh, gd = _grads(hard), _grads(dense)
    for name in gh:
        if name.startswith(f'units.{k}.'):
            torch.testing.assert_close(gh[name], gd[name])
        else:
            assert gh[name] is None
            assert gd[name].abs().sum() == 0  # weight 0 in the dense sum
    assert _tracked(hard) == [1, 1, 1]  # every unit still ran


@pytest.mark.parametrize('mode, checkpointed', [('index', 1), ('soft', 3),
                                                ('hard', 1)])
def test_checkpointing_gives_the_same_result(mode, checkpointed, monkeypatch):
    from glid_mm.models.layers import gppf_lego_layer
    calls = []
    real = gppf_lego_layer.checkpoint_sync_bn

    def spy(unit, x):
        calls.append(unit)
        return real(unit, x)

    monkeypatch.setattr(gppf_lego_layer, 'checkpoint_sync_bn', spy)
    x = _x()
    results = []
    for with_cp in (False, True):
        layer = _layer(with_cp=with_cp)
        xi = x.detach().clone().requires_grad_(True)
        w = torch.tensor([0., 1., 0.], requires_grad=True) if mode == 'hard' \
            else torch.tensor([0.3, 0.3, 0.4], requires_grad=True)
        if mode == 'index':
            out = layer(xi, index=0)
        else:
            out = layer(xi, weights=w, hard=mode == 'hard')
        (out**2).sum().backward()
        results.append((out.detach(), xi.grad, _grads(layer), _tracked(layer)))
    (o0, x0, g0, t0), (o1, x1, g1, t1) = results
    assert len(calls) == checkpointed  # units run with autograd, cp only
    torch.testing.assert_close(o0, o1)
    torch.testing.assert_close(x0, x1)
    for name in g0:
        if g0[name] is None:
            assert g1[name] is None
        else:
            torch.testing.assert_close(g0[name], g1[name])
    # running statistics updated once per step, not again by recomputation
    assert t0 == t1


def test_bad_calls():
    layer = _layer()
    x = _x()
    with pytest.raises(ValueError, match='exactly one of `weights` and'):
        layer(x)
    with pytest.raises(ValueError, match='exactly one of `weights` and'):
        layer(x, weights=torch.ones(3) / 3, index=0)
    with pytest.raises(IndexError, match='unit index 3 out of range for 3'):
        layer(x, index=3)
    with pytest.raises(IndexError, match='unit index -1 out of range'):
        layer(x, index=-1)
    with pytest.raises(
            ValueError, match=r'weights must have shape \(3,\), '
            r'got \(2,\)'):
        layer(x, weights=torch.ones(2))


def test_stem_shape_and_resnet_names():
    torch.manual_seed(0)
    stem = LegoStem(in_channels=3, stem_channels=4)
    out = stem(torch.randn(2, 3, 16, 12))
    assert out.shape == (2, 4, 8, 6)
    assert (out >= 0).all()  # ReLU
    assert set(stem.state_dict()) == {
        'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean',
        'bn1.running_var', 'bn1.num_batches_tracked'
    }


def test_stem_equals_mmdet_resnet_stem():
    """A stem loads mmdet ResNet's conv1 / bn1 with no renaming and computes
    the same conv -> bn -> relu."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    resnet = ResNet(
        depth=18,
        stem_channels=4,
        base_channels=2,
        num_stages=1,
        out_indices=(0, ),
        strides=(1, ),
        dilations=(1, ))
    resnet.eval()
    stem = LegoStem(stem_channels=4)
    state = {
        k: v
        for k, v in resnet.state_dict().items()
        if k.startswith(('conv1.', 'bn1.'))
    }
    result = stem.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    stem.eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        expected = resnet.relu(resnet.norm1(resnet.conv1(x)))
        torch.testing.assert_close(stem(x), expected)
