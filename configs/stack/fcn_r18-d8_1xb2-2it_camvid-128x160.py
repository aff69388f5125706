# Smoke test of the mmseg stack on real CamVid: a stock FCN R-18-D8 trained
# from scratch for 2 iterations (batch 2, 128x160 crops) on CPU, then
# validated with IoUMetric (mIoU) on the first 4 val frames. Smoke numbers,
# not results.
#
# Model = mmseg's fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py, which is
# `_base_/models/fcn_r50-d8.py` + the R-18 deltas below; that stock config
# also carries the Cityscapes dataset keys, and mmengine refuses a key that
# two bases define, so the same stock pieces are composed here with the
# CamVid dataset base instead of Cityscapes'.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', '../_base_/datasets/camvid.py',
    '../_base_/runtimes/mmseg.py', 'mmseg::_base_/schedules/schedule_80k.py'
]

crop_size = (128, 160)  # (h, w)
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN needs a process group
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,  # from scratch: no download; pass load_from to fine-tune
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512, channels=128, num_classes=11, norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=256, channels=64, num_classes=11, norm_cfg=norm_cfg))

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
    dataset=dict(indices=4, pipeline=test_pipeline))
test_dataloader = val_dataloader

# 2 iterations, validated at the end; lr of the stock 4xb2 schedule (total
# batch 8) scaled linearly to batch 2: 0.01 * 2 / 8
optim_wrapper = dict(optimizer=dict(lr=0.0025))
param_scheduler = [
    dict(
        type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=2, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
