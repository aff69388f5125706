"""glid_mm parts dropped into stock configs of each toolbox and trained for
2 iterations by that toolbox's own ``tools/train.py`` (from its ``.mim``
folder), on the bundled data:

- mmpose: a stock top-down heatmap config (ResNet-50 SimpleBaseline) with
  ``GLIDSwinTransformer`` (nano) as backbone and ``BiFPN`` as neck.
  (``LegoResNet`` in a stock mmpose model: tests/test_registry.py.)
- mmpretrain: stock ResNet-18 classification with ``LegoResNet``.
- mmdet: stock Faster R-CNN with ``BiFPN`` in place of FPN, and stock
  RetinaNet with ``LegoResNet``.
- mmseg: stock PointRend with ``BiFPN`` in place of FPN.

Each config is what a user writes (``_base_`` = the stock config,
``custom_imports``, the swapped part) plus CPU-sized data / schedule
overrides; ``model.pretrained=None`` / ``init_cfg=None`` where the stock
config downloads weights (nothing can be downloaded here). The README's
"Using glid_mm" section shows the same snippets.
"""
import importlib.util
import math
import os.path as osp

import pytest

_HERE = osp.dirname(osp.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    'glid_mm_tests_drop_in', osp.join(_HERE, 'test_drop_in.py'))
_drop_in = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_drop_in)
_train_with_toolbox = _drop_in._train_with_toolbox

TD_HM_RES50 = ('mmpose::body_2d_keypoint/topdown_heatmap/coco/'
               'td-hm_res50_8xb64-210e_coco-256x192.py')

# 2 iterations, no validation, a checkpoint at iteration 2, a log line per
# iteration (stock schedules are epoch based and long)
_TWO_ITERS = """
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
param_scheduler = []
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=2, save_best=None),
    logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
"""


def _assert_trained(toolbox, cfg_text, tmp_path, name, parts):
    """Write the config, train it with the toolbox's own train.py; two
    finite logged losses, and the iteration-2 checkpoint holds the
    dropped-in parts (``parts``: state-dict key prefixes only they have,
    e.g. ``neck.blocks.`` of BiFPN, which FPN lacks)."""
    import torch
    cfg = tmp_path / f'{name}.py'
    cfg.write_text(cfg_text + _TWO_ITERS)
    losses = _train_with_toolbox(toolbox, cfg, tmp_path)
    assert len(losses) == 2, losses
    assert all(math.isfinite(v) for v in losses), losses
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    assert ckpt.is_file()
    # our own file, just written: its meta holds more than tensors
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 2
    keys = list(state['state_dict'])
    for prefix in parts:
        assert any(k.startswith(prefix) for k in keys), (prefix, keys[:20])
    return losses


@pytest.mark.slow
def test_stock_topdown_heatmap_with_glid_swin_and_bifpn_trains_with_mmpose(
        data_root, tmp_path):
    """mmpose's stock SimpleBaseline (ResNet-50, 256x192) with GLID's Swin
    (nano: width 32, one block per stage; window 4 fits the 64x48 ..
    8x6 stages) and ``BiFPN`` as neck; the stock ``HeatmapHead`` reads the
    last (1/32) BiFPN level and upsamples it to the 64x48 heatmaps."""
    import mmpose
    root = osp.join(data_root, 'pose', 'coco') + '/'
    _assert_trained(
        mmpose,
        f"""
_base_ = '{TD_HM_RES50}'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True, type='GLIDSwinTransformer', arch='nano',
        img_size=(256, 192), out_indices=(0, 1, 2, 3),
        stage_cfgs=dict(block_cfgs=dict(window_size=4))),
    neck=dict(type='BiFPN', in_channels=[32, 64, 128, 256], out_channels=64,
              num_repeats=1),
    head=dict(in_channels=64))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}', ann_file='test_coco.json',
                 data_prefix=dict(img='')))
""",
        tmp_path,
        'td-hm_glid-swin-nano_bifpn',
        parts=['backbone.stages.3.', 'neck.blocks.'])


@pytest.mark.slow
def test_stock_resnet18_classifier_with_lego_backbone_trains_with_mmpretrain(
        data_root, tmp_path):
    """mmpretrain's stock ResNet-18 ImageNet classifier with ``LegoResNet``
    (one task 'cls', 2 units per lego layer, 1/4 widths: last stage 128
    channels) on hymenoptera (2 classes, 112 px)."""
    import mmpretrain
    root = osp.join(data_root, 'hymenoptera') + '/'
    _assert_trained(
        mmpretrain,
        f"""
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True, type='LegoResNet', task_names=['cls'], depth=18,
        num_units=2, stem_channels=16, base_channels=16, out_indices=(3, )),
    head=dict(in_channels=128, num_classes=2, topk=(1, )))
data_preprocessor = dict(num_classes=2)
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root='{root}',
        data_prefix='train', metainfo=dict(classes=('ants', 'bees')),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=112),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs')]))
""",
        tmp_path,
        'resnet18_lego',
        parts=['backbone.controllers.cls'])


def _coco128(data_root):
    root = osp.join(data_root, 'coco128') + '/'
    return f"""
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
"""


@pytest.mark.slow
def test_stock_faster_rcnn_with_bifpn_trains_with_mmdet(data_root, tmp_path):
    """mmdet's stock Faster R-CNN: ``type='FPN'`` -> ``type='BiFPN'`` with
    FPN's own arguments (out_channels=256, num_outs=5; in_channels of the
    ResNet-18 used on the CPU), trained on COCO128."""
    import mmdet
    _assert_trained(
        mmdet,
        """
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(type='BiFPN', in_channels=[64, 128, 256, 512], num_repeats=2))
""" + _coco128(data_root),
        tmp_path,
        'faster-rcnn_r18_bifpn',
        parts=['neck.blocks.', 'roi_head.'])


@pytest.mark.slow
def test_stock_retinanet_with_lego_backbone_trains_with_mmdet(
        data_root, tmp_path):
    """mmdet's stock RetinaNet (FPN kept) with ``LegoResNet`` (ResNet-18
    layout, 2 units per lego layer) as the backbone, trained on COCO128."""
    import mmdet
    _assert_trained(
        mmdet,
        """
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True, type='LegoResNet', task_names=['det'], depth=18,
        num_units=2),
    neck=dict(in_channels=[64, 128, 256, 512]))
""" + _coco128(data_root),
        tmp_path,
        'retinanet_lego-r18',
        parts=['backbone.controllers.det', 'neck.fpn_convs.'])


@pytest.mark.slow
def test_stock_pointrend_with_bifpn_trains_with_mmseg(data_root, tmp_path):
    """mmseg's stock PointRend (CascadeEncoderDecoder: FPNHead + PointHead
    over an FPN): ``type='FPN'`` -> ``type='BiFPN'`` with FPN's own
    arguments (out_channels=256, num_outs=4), on CamVid. The stock
    ``model.pretrained`` (ResNet-50 v1c download) is set to None; the
    ADE20K heads (150 classes) are kept: CamVid's ids 0..10 are inside."""
    import mmseg
    root = osp.join(data_root, 'camvid') + '/'
    _assert_trained(
        mmseg,
        f"""
_base_ = 'mmseg::point_rend/pointrend_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
crop_size = (64, 80)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18),
    neck=dict(type='BiFPN', in_channels=[64, 128, 256, 512], num_repeats=1))
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
""",
        tmp_path,
        'pointrend_r18_bifpn',
        parts=['neck.blocks.', 'decode_head.1.'])


@pytest.mark.slow
def test_glid_decoder_and_head_under_mmdet_detr_config_train_with_mmdet(
        project_root, data_root, tmp_path):
    """GLID's Bi-FPN, query decoder and DETR head in mmdet's stock DETR
    config (``configs/examples/detr-r50_glid-bifpn-decoder_coco.py``: the
    stock pipeline and metric kept) trained by mmdet's own train.py;
    ResNet-18 for the CPU."""
    import mmdet
    base = osp.join(project_root, 'configs', 'examples',
                    'detr-r50_glid-bifpn-decoder_coco.py')
    _assert_trained(
        mmdet,
        f"""
_base_ = '{base}'
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]))
""" + _coco128(data_root),
        tmp_path,
        'glid-detr_r18',
        parts=['decoder.queries.', 'bbox_head.', 'neck.blocks.'])


@pytest.mark.slow
def test_glid_semseg_config_trains_with_mmseg(project_root, data_root,
                                              tmp_path, monkeypatch):
    """The GLID nano semantic-segmentation config (GLIDEncoderDecoder with
    Bi-FPN, query decoder and GLIDMaskSegHead) trained by mmseg's own
    train.py: the runtime base brings custom_imports and glid_mm's hooks."""
    import mmseg
    monkeypatch.setenv('GLID_MM_DATA', data_root)
    base = osp.join(project_root, 'configs', 'glid',
                    'glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py')
    _assert_trained(
        mmseg,
        f"""
_base_ = '{base}'
train_dataloader = dict(batch_size=2, num_workers=0,
                        persistent_workers=False)
""",
        tmp_path,
        'glid-semseg_nano',
        parts=['decoder.queries.', 'decode_head.', 'neck.'])
