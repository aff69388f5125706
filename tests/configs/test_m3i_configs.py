"""Every configs/m3i config builds; the tiny one trains with falling losses.

Time budget: ~40 s on one free CPU core (two ViT-B builds, a 30-iteration
and a 3-iteration tiny run).
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

CONFIG_DIR = osp.join('configs', 'm3i')
TINY = 'm3i_vit-tiny-p16_1xb8-200i_hymenoptera-coco128-64px.py'
TINY_WOMIX = 'm3i-womix_vit-tiny-p16_1xb8-200i_hymenoptera-coco128-64px.py'
BASE_400 = 'm3i_vit-base-p16_64xb64-amp-coslr-400e_in1k.py'
BASE_1600 = 'm3i_vit-base-p16_64xb64-amp-coslr-1600e_in1k.py'
BASE_WOMIX = 'm3i-womix_vit-base-p16_64xb64-amp-coslr-400e_in1k.py'
PROBE = 'm3i-probe_vit-tiny-p16_1xb32-30e_hymenoptera-64px.py'
STOCK_VIT = 'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py'


def _cfg(project_root, name):
    return Config.fromfile(osp.join(project_root, CONFIG_DIR, name))


def test_every_config_is_covered(project_root):
    names = {
        osp.basename(p)
        for p in glob.glob(osp.join(project_root, CONFIG_DIR, '*.py'))
    }
    assert names == {TINY, TINY_WOMIX, BASE_400, BASE_1600, BASE_WOMIX, PROBE}


def test_probe_matches_the_tiny_encoder_and_freezes_it(project_root):
    """The hymenoptera linear probe reads the tiny M3I encoder: same arch
    and patch / image size; only the linear head trains."""
    tiny, probe = _cfg(project_root, TINY), _cfg(project_root, PROBE)
    assert probe.model.backbone.arch == tiny.model.backbone.arch
    for key in ('img_size', 'patch_size'):
        assert probe.model.backbone[key] == tiny.model.backbone[key], key
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import glid_mm  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(probe.model)
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable <= {
        'head.fc.weight', 'head.fc.bias', 'backbone.ln2.weight',
        'backbone.ln2.bias'
    }
    assert {'head.fc.weight', 'head.fc.bias'} <= trainable


def _build_model(cfg):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import glid_mm  # noqa: F401
    cfg.model.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


def test_vit_base_400e_builds_and_hands_off(project_root):
    from mmengine.hub import get_config
    from mmpretrain.registry import MODELS

    from glid_mm.models.converters.m3i_to_backbone import m3i_to_backbone
    from glid_mm.utils.load_check import by_part, load_and_report
    cfg = _cfg(project_root, BASE_400)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-3)
    assert cfg.train_dataloader.batch_size * 64 == 4096
    assert cfg.train_cfg.max_epochs == 400
    assert cfg.param_scheduler[1].end == 400
    model = _build_model(cfg)
    assert model.backbone.embed_dims == 768 and len(model.backbone.layers) \
        == 12 and model.backbone.patch_resolution == (14, 14)
    assert len(model.neck.layers) == 4  # the paper's 4-layer decoder
    assert model.head.fc.out_features == 1000
    assert model.mixer.patch_size == 16
    # the pre-trained encoder loads into mmpretrain's stock ViT-B classifier
    state, report = m3i_to_backbone(model.state_dict())
    stock = get_config(STOCK_VIT)
    stock.model.backbone.pop('init_cfg')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MODELS.build(stock.model)
    loading = load_and_report(classifier, state)
    assert 'backbone' not in by_part(loading['missing'])
    assert loading['unexpected'] == []
    # 12 layers x 12 tensors + cls_token, pos_embed, patch proj (2), ln1 (2)
    assert len(loading['loaded']) == len(report['kept']) == 12 * 12 + 6


def test_vit_base_1600e_and_womix(project_root):
    base = _cfg(project_root, BASE_400)
    long = _cfg(project_root, BASE_1600)
    assert long.model == base.model
    assert long.train_cfg.max_epochs == 1600
    assert long.param_scheduler[1].end == 1600
    assert long.param_scheduler[1].T_max == 1560
    womix = _cfg(project_root, BASE_WOMIX)
    model = _build_model(womix)
    assert model.mixer is None
    assert model.loss_weights == dict(inter=1.0, cls=1.0)
    assert model.backbone.mask_ratio == 0.6


def _tiny_runner(project_root, name, tmp_path, max_iters):
    from mmengine.runner import Runner

    import glid_mm  # noqa: F401
    cfg = _cfg(project_root, name)
    cfg.work_dir = str(tmp_path / name[:-3])
    cfg.train_cfg.max_iters = max_iters
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.default_hooks.logger.interval = 5
    # a few real images: 4 ants, 4 bees, 8 unlabelled COCO128 photos
    hymenoptera, coco = cfg.train_dataloader.dataset.datasets
    hymenoptera.indices = [0, 1, 2, 3, 130, 131, 132, 133]
    coco.indices = list(range(8))
    return Runner.from_cfg(cfg)


def test_tiny_dataset_gives_two_views_and_labels(project_root, data_root):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS

    import glid_mm  # noqa: F401
    cfg = _cfg(project_root, TINY)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 243 + 128  # 122 ants + 121 bees, COCO128
    ant, coco = dataset[0], dataset[243]
    for item in (ant, coco):
        assert [tuple(v.shape) for v in item['inputs']] == [(3, 64, 64)] * 2
        assert item['data_samples'].m3i_boxes.shape == (2, 4)
    assert int(ant['data_samples'].gt_label) == 0  # ants
    assert 'gt_label' not in coco['data_samples']


@pytest.mark.slow
def test_tiny_config_losses_fall(project_root, tmp_path):
    torch.manual_seed(0)
    runner = _tiny_runner(project_root, TINY, tmp_path, max_iters=30)
    runner.train()
    for group in ('intra', 'inter', 'cls'):
        history = runner.message_hub.get_scalar(f'train/loss_{group}').data[0]
        assert len(history) == 30
        first, last = history[:5].mean(), history[-5:].mean()
        assert last < 0.9 * first, (group, first, last)
    assert osp.isfile(osp.join(runner.work_dir, 'iter_30.pth'))


def test_tiny_womix_config_runs(project_root, tmp_path):
    runner = _tiny_runner(project_root, TINY_WOMIX, tmp_path, max_iters=3)
    runner.train()
    model = runner.model
    assert model.mixer is None and model.loss_weights.get('intra') is None
    keys = {
        k
        for k in runner.message_hub.log_scalars if k.startswith('train/loss_')
    }
    assert keys == {'train/loss_inter', 'train/loss_cls'}
