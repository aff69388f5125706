# GLID depth fine-tuning at smoke scale on the 5 bundled Redwood RGB-D
# frames (../_base_/datasets/redwood_depth.py: same frames for train and
# val): the nano GLID of glid_swin-nano_1xb16-300i_bundled-128px.py (Swin
# width 32, 1-block BiFPN of width 32, 3-block decoder of width 64) with
# 64 queries and the bins head (eq. 5-7), batch 2 of 96x128 crops from
# frames resized to 160x120, 300 iterations, mmseg's DepthMetric. Same code
# path as the NYU recipe (glid-depth_swin-b_8xb2-38.4k_nyu-416x544.py);
# smoke numbers, not results. Fine-tune from the nano pre-training
# checkpoint with
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
_base_ = [
    '../_base_/runtimes/mmseg.py', '../_base_/datasets/redwood_depth.py',
    '../_base_/models/glid-depth_swin-b.py'
]

crop_size = (96, 128)  # (h, w)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # GLIDSwinTransformer's arch='nano' for mmpretrain's Swin (which has no
    # such preset; the dict replaces the Swin-B base's 'base' string)
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=32,
            depths=[1, 1, 1, 1],
            num_heads=[1, 2, 4, 8]),
        window_size=2),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=32, num_repeats=1),
    decoder=dict(
        in_channels=32,
        embed_dims=64,
        num_layers=3,
        num_heads=4,
        feedforward_channels=128),
    decode_head=dict(in_channels=64, feat_channels=32))

meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape',
             'pad_shape', 'scale_factor', 'flip', 'flip_direction',
             'category_id')
# the NYU recipe's augmentation at 1/4 of the frame size
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),  # mm -> m
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
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
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    # after Resize: the metric compares at the original frame size
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# the NYU recipe's AdamW and warm-up + cosine, 5x the lr for the short run
max_iters = 300
warmup_iters = int(0.3 * max_iters)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.05),
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
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
