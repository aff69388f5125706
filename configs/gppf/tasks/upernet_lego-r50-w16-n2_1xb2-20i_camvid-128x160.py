# GPPF tiny semantic segmentation task (CamVid, UperNet): the "seg" task of
# ../gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py, and on
# its own a single-task smoke run (20 iterations, batch 2, CPU). Stock
# mmseg UperNet with an auxiliary FCN head on res4 (GPPF App. D.1) on a
# LegoResNet-50 at 1/4 width, 128x160 crops of half-size frames. Heads use
# plain BN (under SIMT only the processes running this task run its heads).
# Smoke numbers, not results.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py', '../../_base_/datasets/camvid.py',
    '../../_base_/runtimes/mmseg.py', 'mmseg::_base_/schedules/schedule_20k.py'
]

crop_size = (128, 160)  # (h, w)
width = 16  # LegoResNet base_channels (ResNet-50: 64)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='LegoResNet',
        task_names=('seg', ),
        depth=50,
        num_units=2,
        stem_channels=width,
        base_channels=width,
        norm_cfg=dict(type='CrossTaskSyncBN')),
    decode_head=dict(
        in_channels=[width * 4, width * 8, width * 16, width * 32],
        channels=64,
        num_classes=11,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=width * 16, channels=32, num_classes=11,
        norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(240, 180),  # (w, h): half the 480x360 frame
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(240, 180), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(indices=8, pipeline=test_pipeline))
test_dataloader = val_dataloader

# stock lr 0.01 is for total batch 16 (4 GPUs x 4); batch 2: 0.01 * 2 / 16
optim_wrapper = dict(optimizer=dict(lr=0.00125))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=20,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20, val_interval=20)
custom_hooks = [
    dict(type='GumbelTemperatureHook', start=5.0, end=0.01, decay_iters=10),
    dict(type='FiniteLossHook'),  # as configs/_base_/runtimes/
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=20))
randomness = dict(seed=0)
