# GLID pre-training of Swin-B on ImageNet-1K at 192 px with the paper's
# settings (Sec. 4 "Pre-training", supp. Table 5): 600 epochs, batch 2048,
# AdamW, base lr 1.5e-4, wd 0.05, betas (0.9, 0.95), cosine decay after 40
# warm-up epochs, RandomResizedCrop + horizontal flip (MAE), random masking
# of 75 % of the 32 px patches. Transformer blocks start from xavier_uniform
# (supp. B.1), done by GLIDSwinTransformer / GLIDDecoder init_weights.
_base_ = [
    '../_base_/models/glid_swin-b.py',
    'mmpretrain::_base_/datasets/imagenet_bs256_simmim_192.py',
    '../_base_/runtimes/mmpretrain.py',
]

mask_ratio = 0.75
mask_strategy = 'random'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=192,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='GLIDMaskGenerator',
        mask_patch_size=32,
        mask_ratio=mask_ratio,
        strategy=mask_strategy),
    dict(type='PackInputs')
]
# 16 GPUs x 128 = 2048 images per step
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))

# lr = base_lr * batch / 256 = 1.5e-4 * 2048 / 256 = 1.2e-3 (Sec. 4)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 2048 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'level_embed': dict(decay_mult=0.),
        }))

max_epochs = 600
warmup_epochs = 40
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
# with --auto-scale-lr the lr above is rescaled by actual_batch / 2048
auto_scale_lr = dict(base_batch_size=2048)
