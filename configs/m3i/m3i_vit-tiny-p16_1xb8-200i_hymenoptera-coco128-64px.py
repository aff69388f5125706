# M3I smoke / tiny pre-training on CPU (minutes): a 2-layer, 64-d ViT with
# 16 px patches on 64 px views (4 x 4 tokens), trained 200 iterations with
# batch 8 on the bundled real images: hymenoptera train (243 images, ants /
# bees labels -> the category target) + COCO128 images (128 unlabelled
# images: only the image targets apply to them). All four ingredients of
# M3I are on: patch-wise mixing, intra-view and inter-view dense targets from
# a momentum encoder, and the category target. Smoke numbers, not results.
_base_ = ['../_base_/runtimes/mmpretrain.py']

data_root = '{{$GLID_MM_DATA:../shared/data}}/'
img_size = 64

model = dict(
    type='M3I',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='MAEViT',
        arch=dict(
            embed_dims=64, num_layers=2, num_heads=2,
            feedforward_channels=128),
        img_size=img_size,
        patch_size=16),  # the mixer hides tokens (no encoder masking)
    # the paper's decoder has 4 layers; 2 keep the smoke run fast
    neck=dict(
        type='M3IDecoder',
        in_channels=64,
        embed_dims=64,
        num_layers=2,
        num_heads=2),
    head=dict(
        type='M3IAttentionPoolHead',
        in_channels=64,
        num_classes=2,
        num_heads=2),
    mixer=dict(type='M3IMixer', patch_size=16, mix_ratio=0.5),
    loss_weights=dict(intra=1.0, inter=1.0, cls=1.0),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='M3ITwoViews',
        crop=dict(
            type='RandomResizedCrop',
            scale=img_size,
            crop_ratio_range=(0.2, 1.0),
            backend='pillow',
            interpolation='bicubic'),
        flip_prob=0.5),
    dict(type='PackInputs', algorithm_keys=('m3i_boxes', 'm3i_flips'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['classes'],
        datasets=[
            dict(
                type='CustomDataset',
                data_root=data_root + 'hymenoptera',
                data_prefix='train',
                pipeline=train_pipeline),
            dict(
                type='CustomDataset',
                data_root=data_root + 'coco128',
                data_prefix='images',
                with_label=False,
                pipeline=train_pipeline),
        ]))

# SiameseIM's optimiser (AdamW, betas (0.9, 0.95), wd 0.05, clip 1.0) at
# its absolute lr for batch 4096 (blr 6.25e-5 * 4096 / 256 = 1e-3); not
# rescaled to batch 8 so that 200 CPU iterations move the tiny model.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'norm': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'head.query': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=10, end=200)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
