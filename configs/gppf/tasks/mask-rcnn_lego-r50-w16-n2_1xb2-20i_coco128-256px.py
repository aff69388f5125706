# GPPF tiny detection task (COCO128, Mask R-CNN): the "det" task of
# ../gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py, and on
# its own a single-task smoke run (20 iterations, batch 2, CPU) of a lego
# backbone with one task. Stock mmdet Mask R-CNN + FPN with a LegoResNet-50
# at 1/4 width (base_channels 16: stage outputs 64/128/256/512) and heads
# narrowed to match; images resized to 256 px. Smoke numbers, not results.
# COCO128 has no val split: val/test use the same 128 images (overfit
# check). Task heads use plain BN (under SIMT only the processes running
# this task run its heads).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../../_base_/runtimes/mmdet.py'
]

data_root = '{{$GLID_MM_DATA:../shared/data}}/coco128/'
width = 16  # LegoResNet base_channels (ResNet-50: 64)
model = dict(
    backbone=dict(
        _delete_=True,
        type='LegoResNet',
        task_names=('det', ),
        depth=50,
        num_units=2,
        stem_channels=width,
        base_channels=width,
        norm_cfg=dict(type='CrossTaskSyncBN')),
    neck=dict(
        in_channels=[width * 4, width * 8, width * 16, width * 32],
        out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=128),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64)))

img_scale = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances.json',
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances.json',
        data_prefix=dict(img='images/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances.json')
test_evaluator = val_evaluator

# stock 1x schedule lr 0.02 is for total batch 16; batch 2: 0.02 * 2 / 16
optim_wrapper = dict(optimizer=dict(lr=0.0025))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=5, end=20)
]
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=20, val_interval=20)
# dynamic fine-tuning schedule (App. D.2): decay over half the iterations
custom_hooks = [
    dict(type='GumbelTemperatureHook', start=5.0, end=0.01, decay_iters=10),
    dict(type='FiniteLossHook'),  # as configs/_base_/runtimes/
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=20))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
