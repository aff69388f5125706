# GLID fine-tuning for NYU-Depth-v2 monocular depth, Swin-B (GLID Table 1 /
# Table 2 "NYUv2"; Sec. 3.2 "Depth estimation", eq. 5-7; Sec. 4).
# Pre-trained encoder, BiFPN and query decoder are kept; 64 queries
# [CLS] + e_i (eq. 3, "64 queries following the practice in BinsFormer");
# the only new layer is the linear bins head (a bin length and a 256-d bin
# embedding per query; centres by eq. 5 over [d_min, d_max] = [1e-3, 10] m;
# per-pixel softmax over bins with the 1/4-scale BiFPN map, eq. 6; depth =
# centre-weighted sum, eq. 7), supervised on every decoder block with
# BinsFormer's SI log loss (var(g) + 0.15 mean(g)^2, x10).
# Supp. Table 9: AdamW lr 1e-4, weight decay 0.05, betas (0.9, 0.999),
# batch 16 (8 GPUs x 2), 38.4k iterations, drop path 0.1; supp. B: linear
# warm-up over the first 30% of iterations, then cosine annealing; flip,
# crop, rotation and colour jitter as BinsFormer (its NYU pipeline:
# RandomRotate(prob 0.5, 2.5 deg), RandomFlip 0.5, RandomCrop 416x544,
# ColorAug (gamma / brightness / colour 0.9-1.1 / 0.75-1.25 / 0.9-1.1);
# mmseg has no ColorAug, PhotoMetricDistortion with matching ranges stands
# in; BinsFormer's NYUCrop of the white border before the random crop has
# no mmseg transform and is left out). Evaluation: mmseg's DepthMetric on
# the Eigen crop ('nyu_crop'), depths in (1e-3, 10] m.
# Load the GLID pre-training checkpoint (backbone.*, neck.*, decoder.*):
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
_base_ = [
    '../_base_/runtimes/mmseg.py', 'mmseg::_base_/datasets/nyu.py',
    '../_base_/models/glid-depth_swin-b.py'
]

crop_size = (416, 544)  # (h, w), BinsFormer's NYU crop
min_depth, max_depth = 1e-3, 10.0
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size),
    decode_head=dict(min_depth=min_depth, max_depth=max_depth))

meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape',
             'pad_shape', 'scale_factor', 'flip', 'flip_direction',
             'category_id')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),  # mm -> m
    # rotated-in corners of the depth map get 0 = invalid
    dict(type='RandomRotate', prob=0.5, degree=2.5, seg_pad_val=0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.9, 1.1),
        saturation_range=(0.9, 1.1),
        hue_delta=5),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=2,  # x 8 GPUs = 16
    num_workers=4,
    dataset=dict(pipeline=train_pipeline))

max_iters = 38400
warmup_iters = int(0.3 * max_iters)  # 11,520
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters,
        T_max=max_iters - warmup_iters)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=3200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=3200,
        save_best='rmse',
        rule='less'))
log_processor = dict(by_epoch=False)
