# GLID fine-tuning for ADE20K panoptic segmentation (100 things + 50 stuff),
# Swin-B (GLID Table 1 / Table 2 "Seg^pan"; Sec. 3.2 eq. 3-4; Sec. 4).
# Model: ../_base_/models/glid-maskformer_swin-b.py (200 queries, one linear
# head, Mask2Former matching / losses on every decoder block, mmdet's
# MaskFormerFusionHead). Schedule (supp. Table 7): AdamW lr 1e-4, backbone
# 1e-5, batch 16 (8 GPUs x 2), 160k iterations, poly. Augmentation (supp.
# B.2): scale jitter 0.5-2.0 of a 640 short side, 640x640 crops, horizontal
# flip, colour jitter. Evaluated with mmdet's CocoPanopticMetric (PQ) on
# mmdet's ADE20K panoptic json (data/ADEChallengeData2016/).
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
#   (CKPT: a GLID Swin pre-training checkpoint)
_base_ = [
    '../_base_/runtimes/mmdet.py', 'mmdet::_base_/datasets/ade20k_panoptic.py',
    '../_base_/models/glid-maskformer_swin-b.py',
    '../_base_/schedules/glid-seg_adamw-poly-160k.py'
]

model = dict(
    panoptic_head=dict(num_things_classes=100, num_stuff_classes=50),
    # PQ only: the instance branch of the fusion head is not evaluated here
    test_cfg=dict(panoptic_on=True, instance_on=False))

crop_size = (640, 640)
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(
        type='LoadPanopticAnnotations',
        with_bbox=True,
        with_mask=True,
        with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResize',
        scale=(2560, 640),  # short side 640 x [0.5, 2.0]
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_size=crop_size,
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=2,  # x 8 GPUs = 16
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        ann_file='ade20k_panoptic_train.json',
        data_prefix=dict(img='images/training/', seg='ade20k_panoptic_train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=5000,
        max_keep_ckpts=3,
        save_best='coco_panoptic/PQ'))
log_processor = dict(by_epoch=False)  # iteration-based schedule
