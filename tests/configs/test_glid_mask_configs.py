"""Every GLID mask-classification config builds and carries the paper's values.

ADE20K recipes: supp. Table 7 and B.2 (AdamW 1e-4, backbone 1e-5, batch 16,
160k iterations, poly, drop path 0.1, decoder drop path 0.2, 640 crops, scale
jitter 0.5-2.0, flip, colour jitter) and Sec. 4 (100 / 200 / 200 queries).
Big models are built model-only without filling their weights (the
structure is what is checked). Time budget: about 20 s.
"""
import contextlib
import os.path as osp
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model

ADE = [(task, arch) for task in ('semseg', 'insseg', 'panseg')
       for arch in ('b', 'l')]
TINY = [
    'glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py',
    'glid-insseg_swin-nano_1xb8-2k_coco128-320x240.py',
    'glid-panseg_swin-nano_1xb2-500i_coco-panoptic-samples-320x240.py',
]
QUERIES = dict(semseg=100, insseg=200, panseg=200)
CLASSES = dict(semseg=(150, 0), insseg=(100, 0), panseg=(100, 50))


def _load(project_root, name):
    cfg = Config.fromfile(osp.join(project_root, 'configs', 'glid', name))
    init_default_scope(cfg.default_scope)
    return cfg


def _head(model):
    return getattr(model, 'decode_head', None) or model.panoptic_head


@contextlib.contextmanager
def _skip_random_init():
    with contextlib.ExitStack() as stack:
        for module in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.LayerNorm,
                       torch.nn.Embedding):
            stack.enter_context(
                mock.patch.object(module, 'reset_parameters',
                                  lambda self: None))
        yield


@pytest.mark.parametrize('task,arch', ADE)
def test_ade20k_recipe(project_root, task, arch):
    cfg = _load(project_root,
                f'glid-{task}_swin-{arch}_8xb2-160k_ade20k-640x640.py')
    assert cfg.default_scope == ('mmseg' if task == 'semseg' else 'mmdet')
    assert cfg.custom_imports.imports == ['glid_mm']
    m = cfg.model
    assert m.backbone.arch == dict(b='base', l='large')[arch]
    assert m.backbone.drop_path_rate == 0.1
    assert m.decoder.drop_path_rate == 0.2
    assert (m.decoder.embed_dims, m.decoder.num_layers) == (512, 6)
    head_cfg = m.get('decode_head', m.get('panoptic_head'))
    assert head_cfg.num_queries == QUERIES[task]
    # schedule: supp. Table 7
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, tuple(opt.betas)) == \
        ('AdamW', 1e-4, 0.05, (0.9, 0.999))
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == \
        0.1
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.param_scheduler[0].end == 160000
    # augmentation: supp. B.2
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert tuple(steps['RandomResize'].ratio_range) == (0.5, 2.0)
    assert min(steps['RandomResize'].scale) == 640
    assert tuple(steps['RandomCrop'].crop_size) == (640, 640)
    assert steps['RandomFlip'].prob == 0.5
    assert 'PhotoMetricDistortion' in steps
    # model-only build with init_cfg=None
    m.init_cfg = None
    with _skip_random_init():
        model = build_model(m)
    head = _head(model)
    things, stuff = CLASSES[task]
    assert head.num_classes == things + stuff
    if task != 'semseg':
        assert (model.panoptic_fusion_head.num_things_classes,
                model.panoptic_fusion_head.num_stuff_classes) == CLASSES[task]
    assert model.decoder.queries.num_queries == QUERIES[task]
    assert model.neck.in_channels == dict(
        b=[128, 256, 512, 1024], l=[192, 384, 768, 1536])[arch]


def test_paramwise_lr_and_decay(project_root):
    """Backbone at 1e-5 (its norms / tables without decay), the rest 1e-4."""
    cfg = _load(project_root, 'glid-semseg_swin-b_8xb2-160k_ade20k-640x640.py')
    with _skip_random_init():
        model = build_model(cfg.model)
    groups = {
        id(p): g
        for g in build_optim_wrapper(model,
                                     cfg.optim_wrapper).optimizer.param_groups
        for p in g['params']
    }
    params = dict(model.named_parameters())
    expected = {
        'backbone.stages.2.blocks.17.attn.w_msa.qkv.weight': (1e-5, 0.05),
        'backbone.stages.2.blocks.17.norm1.weight': (1e-5, 0.0),
        'backbone.stages.2.blocks.1.norm2.weight': (1e-5, 0.0),
        'backbone.stages.0.downsample.norm.weight': (1e-5, 0.0),
        'backbone.norm3.weight': (1e-5, 0.0),
        'backbone.patch_embed.norm.weight': (1e-5, 0.0),
        'backbone.stages.1.blocks.0.attn.w_msa.relative_position_bias_table':
        (1e-5, 0.0),
        'neck.blocks.0.td_conv.0.pointwise_conv.conv.weight': (1e-4, 0.05),
        'neck.lateral_convs.0.bn.weight': (1e-4, 0.0),
        'decoder.layers.5.ffn.layers.1.weight': (1e-4, 0.05),
        'decoder.layers.0.norms.2.weight': (1e-4, 0.0),
        'decoder.queries.cls_token': (1e-4, 0.0),
        'decoder.queries.query_embed': (1e-4, 0.0),
        'decoder.level_embed.weight': (1e-4, 0.0),
        'decode_head.predictor.fc.weight': (1e-4, 0.05),
    }
    for name, (lr, wd) in expected.items():
        group = groups[id(params[name])]
        assert (group['lr'], group['weight_decay']) == \
            pytest.approx((lr, wd)), name


@pytest.mark.parametrize('name', TINY)
def test_tiny_config_builds_and_matches_nano_pretraining(project_root, name):
    cfg = _load(project_root, name)
    model = build_model(cfg.model)
    pre = Config.fromfile(
        osp.join(project_root, 'configs', 'glid',
                 'glid_swin-nano_1xb16-300i_bundled-128px.py')).model
    assert model.neck.in_channels == pre.neck.in_channels
    assert model.decoder.embed_dims == pre.decoder.embed_dims
    assert model.decoder.num_layers == pre.decoder.num_layers
    assert _head(model).predictor.mask_channels == pre.neck.out_channels
    assert 'GLID_MM_DATA' not in cfg.train_dataloader.dataset.data_root
    assert cfg.train_dataloader.dataset.data_root.rstrip('/').endswith(
        ('camvid', 'coco128', 'coco_panoptic'))
