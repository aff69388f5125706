# Tiny GLID pre-training on the bundled real images, on a CPU in minutes:
# COCO128 (128) + CamVid train (367) + hymenoptera train (245) images,
# random 128 px crops, 32 px mask units (4 x 4 grid, 12 masked = 75 %; 32 px
# is the encoder's total stride, as the visible-token encoder needs), a
# 4-stage Swin of width 32 (1 block per stage) that encodes only the 4
# visible units, a 1-block BiFPN of width 32 and a 3-block query decoder of
# width 64. Same code path as the Swin-B recipe; smoke-scale numbers, not
# results. The mask-token (SimMIM-style) ablation of the encoder:
# glid-masktoken_swin-nano_1xb16-300i_bundled-128px.py.
#   python tools/train.py configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py  # noqa: E501
_base_ = ['../_base_/runtimes/mmpretrain.py']

data_root = '{{$GLID_MM_DATA:../shared/data}}/'
img_size = 128
mask_patch_size = 32

model = dict(
    type='GLID',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='GLIDSwinTransformer',
        arch='nano',  # width 32, one block per stage
        img_size=img_size,
        out_indices=(0, 1, 2, 3),
        # only the visible tokens (GLID Sec. 3.1, "following MAE")
        mask_mode='visible',
        # token maps 32/16/8/4 (a 32 px unit: 8/4/2/1 tokens a side)
        stage_cfgs=dict(block_cfgs=dict(window_size=2)),
        drop_path_rate=0.0),
    neck=dict(
        type='BiFPN',
        in_channels=[32, 64, 128, 256],
        out_channels=32,
        num_repeats=1,
        with_cp=True),
    decoder=dict(
        type='GLIDDecoder',
        in_channels=32,
        embed_dims=64,
        num_layers=3,
        num_heads=4,
        feedforward_channels=128,
        feat_levels=(3, 2, 1),
        with_mask_token=True),
    head=dict(
        type='GLIDPretrainHead',
        in_channels=64,
        patch_size=mask_patch_size,
        norm_pix=False,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='GLIDMaskGenerator',
        mask_patch_size=mask_patch_size,
        mask_ratio=0.75,
        strategy='random'),
    dict(type='PackInputs')
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ConcatDataset',
        # unlabelled images of the three bundled sets
        datasets=[
            dict(
                type='CustomDataset',
                data_root=data_root + 'coco128',
                data_prefix='images',
                with_label=False,
                pipeline=train_pipeline),
            dict(
                type='CustomDataset',
                data_root=data_root + 'camvid',
                data_prefix='images/train',
                with_label=False,
                pipeline=train_pipeline),
            dict(
                type='CustomDataset',
                data_root=data_root + 'hymenoptera',
                data_prefix='train',
                with_label=False,
                pipeline=train_pipeline),
        ]))

# The paper's AdamW (betas (0.9, 0.95), wd 0.05) at base lr 1.5e-4 would give
# 1.5e-4 * 16 / 256 ~ 1e-5 for batch 16, far too slow for 300 steps; the tiny
# run uses 1e-3 (the Swin-B absolute lr 1.2e-3 rounded) with a short warm-up.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'level_embed': dict(decay_mult=0.),
        }))
max_iters = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=10,
        end=max_iters,
        eta_min=1e-5)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
