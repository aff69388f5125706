"""LegoSwinTransformer: Swin lego layers (GPPF eq. 1, Sec. 3.3, Sec. 4.2)."""
import copy

import pytest
import torch
from mmdet.models.necks import FPN
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmpretrain.models import SwinTransformer
from mmseg.structures import SegDataSample

import glid_mm  # noqa: F401
from glid_mm.engine.hooks import GPPFSelectionLoggerHook
from glid_mm.models.backbones.gppf_lego_base import BaseLegoBackbone
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
from glid_mm.models.backbones.gppf_lego_swin import LegoSwinTransformer
from glid_mm.models.converters.gppf_path_export import lego_to_swin_state_dict
from glid_mm.registry import MODELS

ARCH = dict(embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))
# window 2: the shifted block of stage 2 (4x4 map) uses shifted windows
TINY = dict(arch=ARCH, window_size=2, drop_path_rate=0.)
NAMES = ['stem', 'stage0_0', 'stage1_0', 'stage2_0', 'stage2_1', 'stage3_0']
SHAPES = [(2, 32, 16, 16), (2, 64, 8, 8), (2, 128, 4, 4), (2, 256, 2, 2)]


def tiny(**kwargs):
    cfg = dict(TINY, task_names=('det', 'cls'), num_units=2)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return LegoSwinTransformer(**cfg)


def images(n=2, size=64):
    torch.manual_seed(1)
    return torch.randn(n, 3, size, size)


def record(model):
    """Forward hooks: ``calls[(layer, k)]`` counts, ``outs`` keeps outputs
    of every unit ``(layer, k)`` and of every lego layer ``layer``."""
    calls, outs = {}, {}
    for name, layer in model.lego.items():
        layer.register_forward_hook(
            lambda m, a, out, key=name: outs.__setitem__(key, out))
        for k, unit in enumerate(layer.units):
            calls[(name, k)] = 0

            def hook(module, args, out, key=(name, k)):
                calls[key] += 1
                outs[key] = out

            unit.register_forward_hook(hook)
    return calls, outs


def set_path(model, task, path):
    """Controllers whose argmax is ``path`` (one unit per lego layer)."""
    with torch.no_grad():
        logits = torch.zeros(model.num_layers, model.num_units)
        logits[torch.arange(model.num_layers), torch.tensor(path)] = 2.0
        model.controllers[task].copy_(logits)


def plain_swin(**kwargs):
    cfg = dict(
        arch=ARCH, window_size=2, drop_path_rate=0., out_indices=(0, 1, 2, 3))
    cfg.update(kwargs)
    model = SwinTransformer(**cfg)
    model.eval()  # mmpretrain's train() returns None: no chaining
    return model


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_builds_through_each_toolbox_registry(scope):
    registry = MODELS.registries()[scope]
    assert registry.get('LegoSwinTransformer') is LegoSwinTransformer
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(
            dict(type='LegoSwinTransformer', task_names=('det', ), **TINY))
    assert isinstance(model, LegoSwinTransformer)
    assert isinstance(model, BaseLegoBackbone)
    model.eval()
    with torch.no_grad():
        assert [tuple(o.shape) for o in model(images())] == SHAPES


def test_both_backbones_share_the_task_logic():
    """Controllers etc. come from one base, not from copies."""
    assert issubclass(LegoResNet, BaseLegoBackbone)
    for name in ('using_task', 'current_task', 'sample_weights', 'path',
                 'fix_path', 'release_path', 'selection_probs',
                 'set_temperature', 'static_state_dict', '_lego_runner'):
        assert name not in vars(LegoSwinTransformer), name
        assert name not in vars(LegoResNet), name


@pytest.mark.parametrize('kwargs, names', [
    (dict(), NAMES),
    (dict(lego_stem=False), NAMES[1:]),
    (dict(lego_downsample=True), [
        'stem', 'stage0_0', 'stage0_down', 'stage1_0', 'stage1_down',
        'stage2_0', 'stage2_1', 'stage2_down', 'stage3_0'
    ]),
])
def test_layers_and_stage_outputs(kwargs, names):
    model = tiny(**kwargs)
    assert model.layer_names == names and model.num_layers == len(names)
    assert model.out_channels == (32, 64, 128, 256)
    assert model.controllers['det'].shape == (len(names), 2)
    model.train()
    with model.using_task('det'):
        outs = model(images())
    assert [tuple(o.shape) for o in outs] == SHAPES
    # the stage outputs feed mmdet's FPN (and mmseg's UPerHead, below)
    fpn = FPN(in_channels=[32, 64, 128, 256], out_channels=8, num_outs=5)
    assert [tuple(o.shape)[2:] for o in fpn(outs)] == [(16, 16), (8, 8),
                                                       (4, 4), (2, 2), (1, 1)]


def test_out_indices_select_normed_stage_outputs():
    model = tiny(out_indices=(1, 3))
    assert model.out_channels == (64, 256)
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')
    model.eval()
    with torch.no_grad(), model.using_task('cls'):
        outs = model(images(1))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 8, 8), (1, 256, 2, 2)]


def test_soft_mixing_is_the_weighted_sum_of_unit_outputs():
    """Eq. 1: lego layer l returns sum_k u_l[k] * unit_k(x)."""
    model = tiny(lego_downsample=True)
    model.train()
    torch.manual_seed(2)
    weights = torch.rand(model.num_layers, 2).softmax(-1)
    model.sample_weights = lambda task: weights
    calls, outs = record(model)
    with model.using_task('det'):
        model(images())
    assert set(calls.values()) == {1}  # soft: every unit runs once
    for li, name in enumerate(model.layer_names):
        expected = weights[li, 0] * outs[(name, 0)] + \
            weights[li, 1] * outs[(name, 1)]
        torch.testing.assert_close(outs[name], expected)
        assert not torch.allclose(outs[(name, 0)], outs[(name, 1)])


def test_soft_training_gives_every_parameter_a_gradient():
    model = tiny(lego_downsample=True)
    model.train()
    with model.using_task('cls'):
        outs = model(images())
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    assert (model.controllers['cls'].grad != 0).all()
    assert model.controllers['det'].grad is None  # the other task
    for name, p in model.named_parameters():
        if name != 'controllers.det':
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_hard_mode_is_straight_through():
    """Forward: the one-hot sampled unit; backward: every logit learns."""
    model = tiny(hard=True, temperature=1.0)
    model.train()
    samples = []
    model.sample_weights = lambda task, f=model.sample_weights: (
        samples.append(f(task)) or samples[-1])
    calls, outs = record(model)
    with model.using_task('det'):
        outs_ = model(images())
    sum((o * torch.randn_like(o)).sum() for o in outs_).backward()
    weights = samples[0].detach()
    assert set(weights.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(weights.sum(-1), torch.ones(6))
    chosen = weights.argmax(-1).tolist()
    for li, name in enumerate(model.layer_names):
        torch.testing.assert_close(outs[name], outs[(name, chosen[li])])
        for k, unit in enumerate(model.lego[name].units):
            grads = [p.grad for p in unit.parameters()]
            if k == chosen[li]:
                assert all(g is not None for g in grads), (name, k)
            else:
                assert all(g is None for g in grads), (name, k)
    assert (model.controllers['det'].grad != 0).all()


def test_eval_runs_only_the_argmax_unit():
    model = tiny()
    path = [0, 1, 1, 0, 1, 0]
    set_path(model, 'det', path)
    assert model.path('det') == path
    model.eval()
    calls, _ = record(model)
    with torch.no_grad(), model.using_task('det'):
        model(images(1))
    assert calls == {
        (n, k): int(k == path[li])
        for li, n in enumerate(NAMES)
        for k in range(2)
    }


def test_tasks_take_different_paths():
    model = tiny()
    set_path(model, 'det', [0] * 6)
    set_path(model, 'cls', [1] * 6)
    probs = model.selection_probs('cls')
    assert probs.shape == (6, 2) and (probs[:, 1] > 0.8).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(6))
    model.eval()
    calls, _ = record(model)
    x = images(1)
    with torch.no_grad():
        with model.using_task('det'):
            det = model(x)
        ran_det = {key for key, c in calls.items() if c}
        with model.using_task('cls'):
            cls = model(x)
    ran_cls = {key for key, c in calls.items() if c} - ran_det
    assert ran_det == {(n, 0) for n in NAMES}
    assert ran_cls == {(n, 1) for n in NAMES}
    assert all(not torch.allclose(a, b) for a, b in zip(det, cls))


def test_fixed_path_in_training_and_release():
    path = [1, 0, 1, 1, 0, 1]
    model = tiny(fixed_paths=dict(cls=path))
    model.train()
    calls, _ = record(model)
    with model.using_task('cls'):
        outs = model(images())
    assert [k for (n, k), c in calls.items() if c] == path
    sum(o.mean() for o in outs).backward()
    assert model.controllers['cls'].grad is None
    assert model.path('cls') == path and model.fixed_paths['cls'] == tuple(
        path)
    model.release_path('cls')
    assert 'cls' not in model.fixed_paths
    assert model.fix_path('cls') == model.path('cls')  # learned argmax
    with pytest.raises(ValueError, match='6 lego layers'):
        model.fix_path('det', [0] * 5)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(lego_downsample=True),
    dict(lego_stem=False),
    dict(out_indices=(0, 2))
])
def test_static_export_equals_the_lego_model_in_mmpretrain_swin(kwargs):
    model = tiny(**kwargs)
    torch.manual_seed(4)
    with torch.no_grad():
        model.controllers['det'].normal_()
    model.eval()
    swin = plain_swin(out_indices=model.out_indices)
    static = model.static_state_dict(task='det')
    missing, unexpected = swin.load_state_dict(static, strict=False)
    assert missing == [] and unexpected == []
    assert not any(k.startswith('controllers') for k in static)
    x = images()
    with torch.no_grad(), model.using_task('det'):
        ours = model(x)
    with torch.no_grad():
        theirs = swin(x)
    assert len(ours) == len(theirs) == len(model.out_indices)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    # the same export from a GPPF checkpoint's keys, by task name
    prefixed = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    again = lego_to_swin_state_dict(prefixed, 'det', prefix='backbone.')
    assert list(again) == list(static)


def test_static_state_dict_loads_into_swin_tiny():
    model = LegoSwinTransformer(task_names=('det', ), arch='tiny')
    assert model.num_layers == 13  # patch embedding + 2 + 2 + 6 + 2 blocks
    path = [1, 0] * 6 + [1]
    static = model.static_state_dict(path=path)
    swin = SwinTransformer(arch='tiny', out_indices=(0, 1, 2, 3))
    missing, unexpected = swin.load_state_dict(static, strict=False)
    assert missing == [] and unexpected == []
    torch.testing.assert_close(
        static['stages.2.blocks.5.ffn.layers.1.weight'],
        model.lego['stage2_5'].units[1].ffn.layers[1].weight)  # layer 10
    torch.testing.assert_close(static['patch_embed.projection.weight'],
                               model.lego['stem'].units[1].projection.weight)
    with pytest.raises(ValueError, match='exactly one'):
        model.static_state_dict()
    with pytest.raises(ValueError, match='13 lego layers'):
        model.static_state_dict(path=[0] * 12)


def test_task_context_and_errors_name_the_class():
    model = tiny()
    with pytest.raises(RuntimeError, match='LegoSwinTransformer has tasks'):
        model(images(1))
    with pytest.raises(KeyError, match="unknown task 'seg'"):
        with model.using_task('seg'):
            pass
    assert tiny(task_names=('kitti', )).current_task == 'kitti'
    model.set_temperature(0.5)
    assert model.temperature == 0.5


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(task_names=()), ValueError, 'non-empty'),
    (dict(task_names=('det', 'det')), ValueError, 'duplicates'),
    (dict(num_units=0), ValueError, 'num_units'),
    (dict(default_task='seg'), KeyError, 'default_task'),
    (dict(temperature=0.0), ValueError, 'temperature'),
    (dict(arch='huge'), KeyError, "arch='huge'"),
    (dict(arch=dict(embed_dims=32, depths=(1, 1))), ValueError, 'keys'),
    (dict(arch=dict(ARCH, num_heads=(1, 2))), ValueError, 'head count'),
    (dict(out_indices=(4, )), ValueError, 'out_indices'),
    (dict(out_indices=()), ValueError, 'out_indices'),
    (dict(fixed_paths=dict(det=[0] * 3)), ValueError, '6 lego layers'),
    (dict(fixed_paths=dict(det=[2] * 6)), ValueError, 'outside 0..1'),
    (dict(fixed_paths=dict(seg=[0] * 6)), KeyError, 'unknown task'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny(**kwargs)


def test_in_gppf_multi_task_model_with_upernet():
    """GPPFMultiTaskModel and the selection logger take it unchanged."""
    seg = dict(
        _scope_='mmseg',
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[0.] * 3,
            std=[255.] * 3,
            size_divisor=32),
        decode_head=dict(
            type='UPerHead',
            in_channels=[32, 64, 128, 256],
            in_index=[0, 1, 2, 3],
            pool_scales=(1, 2),
            channels=8,
            num_classes=3,
            norm_cfg=dict(type='BN')),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    cls = dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        data_preprocessor=dict(num_classes=2, mean=[0.] * 3, std=[255.] * 3),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=256))
    torch.manual_seed(0)
    model = ROOT_MODELS.build(
        dict(
            _scope_='mmseg',
            type='GPPFMultiTaskModel',
            backbone=dict(
                type='LegoSwinTransformer',
                task_names=('seg', 'cls'),
                **copy.deepcopy(TINY)),
            tasks=dict(seg=seg, cls=cls)))
    assert isinstance(model.backbone, LegoSwinTransformer)
    samples = []
    for _ in range(2):
        s = SegDataSample(
            metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), task='seg'))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 64, 64)))
        samples.append(s)
    data = dict(
        inputs=[
            torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
            for _ in range(2)
        ],
        data_samples=samples)
    model.train()
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    loss, log_vars = model.parse_losses(losses)
    loss.backward()
    assert 'seg.decode.loss_ce' in log_vars
    assert (model.backbone.controllers['seg'].grad != 0).all()
    assert model.backbone.controllers['cls'].grad is None
    hook = GPPFSelectionLoggerHook()
    assert hook.find_backbone(model) is model.backbone
    assert len(hook.selection_scalars(model.backbone)) == 2 * 6 * 2
