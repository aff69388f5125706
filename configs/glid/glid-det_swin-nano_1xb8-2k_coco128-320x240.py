# GLID detection fine-tuning at smoke scale on COCO128 (80 COCO classes; val
# = the training images, an overfit check): the nano GLID
# (../_base_/models/glid-detr_swin-nano.py) with 300 + 1,500 hybrid-matching
# queries and the two-linear-layer head, batch 8 at 320x240, 2,000
# iterations, then mmdet's CocoMetric (bbox). Same code path as the COCO
# recipe (glid-det_swin-b_8xb2-50e_coco.py); smoke numbers, not results.
# Fine-tune the nano pre-training checkpoint with
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
#   (CKPT: the nano pre-training run's iter_300.pth)
_base_ = [
    '../_base_/runtimes/mmdet.py', '../_base_/datasets/coco128_detection.py',
    '../_base_/models/glid-detr_swin-nano.py',
    '../_base_/schedules/glid-nano_adamw-poly-2k.py'
]

scale = (320, 240)  # (w, h)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResize',
        scale=scale,
        ratio_range=(0.75, 1.25),
        keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
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

# The COCO recipe's AdamW (supp. Table 6) with a 5x larger lr for the short
# run: 5e-4, backbone 5e-5 (lr_mult 0.1, as 1e-5 / 1e-4 in the paper).
# the COCO recipe's step decay at 40 / 50 of the run and DETR's clipping
optim_wrapper = dict(clip_grad=dict(max_norm=0.1, norm_type=2))
max_iters = 2000
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[1600],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
