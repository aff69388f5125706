"""LegoResNet: Gumbel mixing (eq. 1), evaluation path, fixed paths, export."""
import pytest
import torch
from mmdet.models.backbones import ResNet

import glid_mm  # noqa: F401
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
from glid_mm.registry import MODELS

TINY = dict(stem_channels=8, base_channels=4, zero_init_residual=False)


def tiny(**kwargs):
    cfg = dict(TINY, task_names=('det', 'cls'), depth=50, num_units=2)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return LegoResNet(**cfg)


def unit_calls(model):
    """Forward hooks counting how often each (layer, unit) runs."""
    calls = {}
    for name, layer in model.lego.items():
        for k, unit in enumerate(layer.units):
            calls[(name, k)] = 0

            def hook(module, args, output, key=(name, k)):
                calls[key] += 1

            unit.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_registered(scope):
    assert MODELS.registries()[scope].get('LegoResNet') is LegoResNet


def test_shapes_and_layers():
    model = tiny()
    assert model.num_layers == 17  # stem + 3 + 4 + 6 + 3 blocks
    assert model.layer_names[:2] == ['stem', 'layer1_0']
    with model.using_task('det'):
        outs = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 8, 8), (2, 32, 4, 4),
                                              (2, 64, 2, 2), (2, 128, 1, 1)]
    assert model.out_channels == (16, 32, 64, 128)


def test_soft_weights_sum_to_one_and_follow_temperature():
    model = tiny()
    with torch.no_grad():
        model.controllers['det'].copy_(
            torch.tensor([[2.0, 0.0]]).expand(17, 2))
    weights = model.sample_weights('det')
    assert weights.shape == (17, 2)
    torch.testing.assert_close(weights.sum(-1), torch.ones(17))
    assert ((weights > 0) & (weights < 1)).all()
    # eq. 1 at tau -> 0 approaches the one-hot argmax of log p + G; at a
    # high temperature the mean weight approaches uniform
    model.set_temperature(100.0)
    torch.manual_seed(1)
    hot = torch.stack([model.sample_weights('det') for _ in range(200)])
    assert (hot.mean((0, 1)) - 0.5).abs().max() < 0.02
    model.set_temperature(0.05)
    cold = torch.stack([model.sample_weights('det') for _ in range(200)])
    # P(unit 0) = softmax([2, 0])[0] = 0.881
    assert abs(cold[..., 0].mean().item() - 0.881) < 0.03
    with pytest.raises(ValueError, match='temperature must be > 0'):
        model.set_temperature(0)


def test_hard_weights_one_hot_with_straight_through_gradient():
    model = tiny(hard=True)
    weights = model.sample_weights('det')
    assert set(weights.detach().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(weights.sum(-1), torch.ones(17))
    (weights[:, 0] * torch.arange(17.)).sum().backward()
    grad = model.controllers['det'].grad
    assert grad is not None and grad.abs().sum() > 0


def test_soft_training_runs_every_unit_and_all_get_gradients():
    model = tiny()
    model.train()
    calls = unit_calls(model)
    with model.using_task('cls'):
        outs = model(torch.randn(2, 3, 32, 32))
    assert set(calls.values()) == {1}
    sum(o.mean() for o in outs).backward()
    assert model.controllers['cls'].grad.abs().min() > 0
    assert model.controllers['det'].grad is None  # other task: unused
    for name, p in model.lego.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_hard_training_gradients_only_for_selected_units():
    model = tiny(hard=True)
    model.train()
    torch.manual_seed(3)
    weights = []
    model.sample_weights = lambda task, f=model.sample_weights: (
        weights.append(f(task)) or weights[-1])
    calls = unit_calls(model)
    with model.using_task('det'):
        outs = model(torch.randn(2, 3, 32, 32))
    # every unit runs (SyncBN calls stay aligned across processes) ...
    assert set(calls.values()) == {1}
    sum(o.mean() for o in outs).backward()
    chosen = weights[0].detach().argmax(-1).tolist()
    # ... but only the sampled unit is trained; every controller row learns
    for li, (name, layer) in enumerate(model.lego.items()):
        for k, unit in enumerate(layer.units):
            grads = [p.grad for p in unit.parameters()]
            if k == chosen[li]:
                assert all(g is not None for g in grads), (name, k)
            else:
                assert all(g is None for g in grads), (name, k)
    assert (model.controllers['det'].grad.abs().sum(-1) > 0).all()


def test_eval_runs_only_the_argmax_unit():
    model = tiny()
    with torch.no_grad():
        model.controllers['det'][:, 1] = 1.0  # unit 1 everywhere
        model.controllers['det'][0] = torch.tensor([1.0, 0.0])  # stem: 0
    model.eval()
    calls = unit_calls(model)
    with model.using_task('det'):
        model(torch.randn(1, 3, 32, 32))
    expected = {(n, k): int(k == (0 if n == 'stem' else 1)) for n, k in calls}
    assert calls == expected
    assert model.path('det') == [0] + [1] * 16
    # equals the extracted static ResNet on the same path
    resnet = ResNet(depth=50, **{k: v for k, v in TINY.items()})
    resnet.load_state_dict(model.static_state_dict(task='det'))
    resnet.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad(), model.using_task('det'):
        for a, b in zip(model(x), resnet(x)):
            torch.testing.assert_close(a, b)


def test_fixed_path_runs_only_that_path_in_training():
    path = [1, 0] * 8 + [1]
    model = tiny(fixed_paths=dict(cls=path))
    model.train()
    calls = unit_calls(model)
    with model.using_task('cls'):
        outs = model(torch.randn(2, 3, 32, 32))
    assert [k for (n, k), c in calls.items() if c] == path
    sum(o.mean() for o in outs).backward()
    assert model.controllers['cls'].grad is None
    assert model.path('cls') == path
    model.release_path('cls')
    assert 'cls' not in model.fixed_paths
    assert model.fix_path('cls') == model.path('cls')  # learned argmax


def test_task_context_and_default_task():
    model = tiny()
    with pytest.raises(RuntimeError, match='no current task'):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(KeyError, match="unknown task 'seg'"):
        with model.using_task('seg'):
            pass
    with model.using_task('det'):
        assert model.current_task == 'det'
        with model.using_task('cls'):
            assert model.current_task == 'cls'
        assert model.current_task == 'det'
    assert tiny(default_task='cls').current_task == 'cls'
    assert tiny(task_names=('kitti', )).current_task == 'kitti'


def test_static_backbone_loads_into_mmdet_resnet50_with_no_missing_keys():
    model = LegoResNet(task_names=('det', ), num_units=2)
    static = model.static_state_dict(path=[1] * 17)
    missing, unexpected = ResNet(depth=50).load_state_dict(
        static, strict=False)
    assert missing == [] and unexpected == []
    torch.testing.assert_close(static['layer4.2.conv2.weight'],
                               model.lego['layer4_2'].units[1].conv2.weight)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(task_names=()), ValueError, 'non-empty'),
    (dict(task_names='det'), ValueError, 'non-empty'),
    (dict(task_names=('det', 'det')), ValueError, 'duplicates'),
    (dict(task_names=('a.b', )), ValueError, 'identifiers'),
    (dict(depth=42), KeyError, 'depth=42'),
    (dict(num_units=0), ValueError, 'num_units'),
    (dict(default_task='seg'), KeyError, 'default_task'),
    (dict(temperature=-1.0), ValueError, 'temperature'),
    (dict(out_indices=(4, )), ValueError, 'out_indices'),
    (dict(fixed_paths=dict(det=[0] * 3)), ValueError, '17 lego layers'),
    (dict(fixed_paths=dict(det=[2] * 17)), ValueError, 'outside 0..1'),
    (dict(fixed_paths=dict(seg=[0] * 17)), KeyError, 'unknown task'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny(**kwargs)


def test_static_state_dict_needs_task_or_path():
    with pytest.raises(ValueError, match='exactly one'):
        tiny().static_state_dict()


def test_dynamic_fine_tuning_loads_units_for_a_new_task(tmp_path):
    """Sec. 3.3: a new task's controller starts uniform on loaded units."""
    source = tiny()
    file = tmp_path / 'gppf.pth'
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in source.state_dict().items()
        }), file)
    model = tiny(
        task_names=('kitti', ),
        init_cfg=dict(
            type='Pretrained', checkpoint=str(file), prefix='backbone.'))
    model.init_weights()
    torch.testing.assert_close(model.lego['layer2_1'].units[1].conv1.weight,
                               source.lego['layer2_1'].units[1].conv1.weight)
    assert (model.controllers['kitti'] == 0).all()
    assert model.current_task == 'kitti'
