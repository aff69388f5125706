# GLID instance segmentation fine-tuning at smoke scale on COCO128 (80 COCO
# classes; val = the training images, an overfit check): the nano GLID
# (../_base_/models/glid-maskformer_swin-nano.py) with 200 queries and the
# one-linear-layer mask head, batch 8 at 320x240, 2,000 iterations, then
# mmdet's CocoMetric (bbox from the masks, segm). Same code path as the
# ADE20K recipe (glid-insseg_swin-b_8xb2-160k_ade20k-640x640.py); smoke
# numbers, not results. Fine-tune the nano pre-training checkpoint with
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
#   (CKPT: the nano pre-training run's iter_300.pth)
_base_ = [
    '../_base_/runtimes/mmdet.py', '../_base_/datasets/coco128_instance.py',
    '../_base_/models/glid-maskformer_swin-nano.py',
    '../_base_/schedules/glid-nano_adamw-poly-2k.py'
]

model = dict(
    data_preprocessor=dict(pad_seg=False),
    panoptic_head=dict(num_things_classes=80, num_stuff_classes=0),
    test_cfg=dict(panoptic_on=False, instance_on=True))

scale = (320, 240)  # (w, h)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# The ADE20K recipe's AdamW (supp. Table 7) with a 5x larger lr for the short
# run: 5e-4, backbone 5e-5 (lr_mult 0.1, as 1e-5 / 1e-4 in the paper).
max_iters = 2000
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
