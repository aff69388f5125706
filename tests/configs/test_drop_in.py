"""glid_mm parts in stock mmdet / mmseg configs on real images: the
README's DETR example (GLID's BiFPN + decoder + head under mmdet's DETR
pipeline and evaluator), BiFPN in place of FPN in Mask R-CNN and RetinaNet
(a training step each), RetinaNet + BiFPN trained by mmdet's own
``tools/train.py``, and Semantic FPN with LegoResNet + BiFPN trained by
mmseg's own ``tools/train.py``."""
import copy
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model

CFG = 'configs/examples/detr-r50_glid-bifpn-decoder_coco.py'


def _train_with_toolbox(toolbox, cfg_file, tmp_path):
    """Train ``cfg_file`` with the toolbox's own ``tools/train.py`` (from
    its ``.mim`` folder) in a subprocess; the logged training losses."""
    import json
    import subprocess
    import sys
    train = osp.join(
        osp.dirname(toolbox.__file__), '.mim', 'tools', 'train.py')
    proc = subprocess.run([
        sys.executable, train,
        str(cfg_file), '--work-dir',
        str(tmp_path / 'work')
    ],
                          cwd=str(tmp_path),
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logs = [
        osp.join(r, f) for r, _, fs in os.walk(tmp_path / 'work') for f in fs
        if f == 'scalars.json'
    ]
    assert logs, f'no scalars.json under {tmp_path / "work"}'
    with open(logs[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r['loss'] for r in records if 'loss' in r]


@pytest.mark.slow
def test_glid_pieces_under_mmdet_detr_config(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, CFG))
    # mmdet's DETR pipeline and metric are kept as they are
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.train_dataloader.dataset.pipeline[-1].type == 'PackDetInputs'
    assert cfg.model.type == 'GLIDDETR'
    init_default_scope('mmdet')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # no download in tests
    model_cfg.backbone.depth = 18  # CPU-sized; same code path
    model_cfg.neck.in_channels = [64, 128, 256, 512]
    torch.manual_seed(0)
    model = build_model(model_cfg)
    assert model.decoder.queries.num_queries == 1800

    from mmdet.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    dataset_cfg.data_root = osp.join(data_root, 'coco128') + '/'
    dataset_cfg.ann_file = 'annotations/instances.json'
    dataset_cfg.data_prefix = dict(img='images/')
    # mmdet's test pipeline with a CPU-sized scale, annotations loaded
    load, resize, annotations, pack = dataset_cfg.pipeline
    resize.scale = (160, 120)
    dataset_cfg.pipeline = [load, annotations, resize, pack]
    dataset = DATASETS.build(dataset_cfg)
    data = model.data_preprocessor(
        pseudo_collate([dataset[0], dataset[1]]), training=True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.neck.parameters().__next__().grad is not None


@pytest.mark.parametrize(
    'base, neck',
    [
        # Mask R-CNN's FPN: 5 outputs from 4 inputs (extra level by max pool)
        ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', dict(num_outs=5)),
        # RetinaNet's FPN: P3-P7 from C3-C5, extra convs on the input
        ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
         dict(start_level=1, num_outs=5, add_extra_convs='on_input')),
    ])
@pytest.mark.slow
def test_bifpn_replaces_fpn_in_stock_mmdet_configs(project_root, data_root,
                                                   base, neck):
    """``type='FPN'`` -> ``type='BiFPN'`` with FPN's own arguments in a
    stock detector; the model builds and a training step on two COCO128
    images gives finite losses and neck gradients."""
    import mmdet
    _, path = base.split('::')
    cfg = Config.fromfile(
        osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', path))
    fpn = cfg.model.neck
    assert fpn.type == 'FPN'
    for key, value in neck.items():
        assert fpn.get(key) == value, key  # the stock config's own values
    init_default_scope('mmdet')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(depth=18, init_cfg=None)  # CPU-sized
    model_cfg.neck = dict(
        fpn, type='BiFPN', in_channels=[64, 128, 256, 512], num_repeats=2)
    model = build_model(model_cfg)
    from mmdet.registry import DATASETS
    dataset_cfg = dict(
        type='CocoDataset',
        data_root=osp.join(data_root, 'coco128') + '/',
        ann_file='annotations/instances.json',
        data_prefix=dict(img='images/'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='Resize', scale=(160, 128), keep_ratio=True),
            dict(type='PackDetInputs')
        ])
    dataset = DATASETS.build(dataset_cfg)
    data = model.data_preprocessor(
        pseudo_collate([dataset[0], dataset[1]]), training=True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert len(model.neck(model.backbone(data['inputs']))) == 5
    grads = [p.grad for p in model.neck.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.slow
def test_stock_retinanet_with_bifpn_trains_with_mmdets_own_train_py(
        project_root, data_root, tmp_path):
    """What a user writes: a stock RetinaNet config, ``type='BiFPN'`` in
    place of FPN (FPN's own arguments kept: start_level=1, num_outs=5,
    add_extra_convs='on_input'), ``custom_imports``; trained for 2
    iterations by mmdet's own ``tools/train.py`` (only data, sizes and the
    schedule overridden for the CPU)."""
    import mmdet
    root = osp.join(data_root, 'coco128') + '/'
    cfg = tmp_path / 'retinanet_bifpn.py'
    cfg.write_text(f"""
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(type='BiFPN', in_channels=[64, 128, 256, 512], num_repeats=2))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        data_root='{root}', ann_file='annotations/instances.json',
        data_prefix=dict(img='images/'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(160, 128), keep_ratio=True),
            dict(type='PackDetInputs')]))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
param_scheduler = []
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=100),
    logger=dict(interval=1))
log_processor = dict(by_epoch=False)
""")
    losses = _train_with_toolbox(mmdet, cfg, tmp_path)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.slow
def test_stock_semantic_fpn_with_lego_backbone_and_bifpn_trains_with_mmseg(
        project_root, data_root, tmp_path):
    """mmseg's stock Semantic FPN with ``LegoResNet`` as the backbone and
    ``BiFPN`` in place of FPN (FPN's arguments kept), trained for 2
    iterations on CamVid by mmseg's own ``tools/train.py``. The stock
    ``model.pretrained`` (an ImageNet ResNet-50 v1c download) is set to
    None: nothing can be downloaded here, and a deep-stem checkpoint does
    not fit the lego stem (LegoResNet refuses it naming the problem)."""
    import mmseg
    root = osp.join(data_root, 'camvid') + '/'
    cfg = tmp_path / 'semfpn_lego_bifpn.py'
    cfg.write_text(f"""
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
crop_size = (64, 80)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True, type='LegoResNet', task_names=('seg', ), depth=18,
        num_units=2),
    neck=dict(type='BiFPN', in_channels=[64, 128, 256, 512], num_repeats=1),
    decode_head=dict(num_classes=11))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CamVidDataset', data_root='{root}',
        data_prefix=dict(img_path='images/train',
                         seg_map_path='labels/train'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='Resize', scale=(80, 60), keep_ratio=True),
            dict(type='RandomCrop', crop_size=crop_size),
            dict(type='PackSegInputs')]))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
param_scheduler = []
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=100),
    logger=dict(interval=1))
""")
    losses = _train_with_toolbox(mmseg, cfg, tmp_path)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
