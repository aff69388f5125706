# GLID panoptic segmentation fine-tuning at smoke scale on the 2 bundled COCO
# panoptic samples (80 things + 53 stuff; train = val, a pipeline and metric
# check): the nano GLID (../_base_/models/glid-maskformer_swin-nano.py) with
# 200 queries and the one-linear-layer mask head, batch 2 at 320x240, 500
# iterations, then mmdet's CocoPanopticMetric (PQ). Same code path as the
# ADE20K recipe (glid-panseg_swin-b_8xb2-160k_ade20k-640x640.py). Loading
# panoptic labels and the PQ metric need the `panopticapi` package.
_base_ = [
    '../_base_/runtimes/mmdet.py',
    '../_base_/datasets/coco_panoptic_samples.py',
    '../_base_/models/glid-maskformer_swin-nano.py',
    '../_base_/schedules/glid-nano_adamw-poly-2k.py'
]

model = dict(
    panoptic_head=dict(num_things_classes=80, num_stuff_classes=53),
    test_cfg=dict(panoptic_on=True, instance_on=False))

scale = (320, 240)  # (w, h)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='LoadPanopticAnnotations',
        with_bbox=True,
        with_mask=True,
        with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResize',
        scale=scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_size=(240, 320),  # (h, w)
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadPanopticAnnotations'),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# AdamW as the COCO128 instance smoke config (5x the paper's lr)
max_iters = 500
param_scheduler = [  # lists replace the base's: the whole entry again
    dict(
        type='PolyLR',
        eta_min=0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
