# M3I Pre-training, ViT-B/16 on ImageNet-1k, 400 epochs: the paper's
# ablation setting (Sec. 4.2, Tables 2-3).
#
# The paper gives the architecture (ViT-B/16 encoder, 4-layer Transformer
# decoder for the image targets, attention pooling + linear classifier for
# the category target, momentum encoder for the dense targets) but its
# appendix with the pre-training hyper-parameters is not in the text we have.
# Everything below the architecture is SiameseIM's ViT-B recipe (its public
# configs/pretrain/dist_sim_base_1600ep.sh and main_pretrain.py), as M3I
# follows SiameseIM for the image targets:
#   total batch 4096 (here 64 GPUs x 64), AdamW betas (0.9, 0.95), weight
#   decay 0.05, base lr 6.25e-5 per 256 images -> 6.25e-5 * 4096 / 256 =
#   1e-3, 40 warm-up epochs then cosine to 0, gradient clipping 1.0, crop
#   scale (0.08, 1), SiameseIM's two colour pipelines, momentum 0.995 rising
#   to 1 on a cosine schedule, decoder width 768 with 16 heads, UniGrad
#   negative weight 0.02.
# Our own choices where neither paper says: mix ratio 0.5 (MixMIM's), loss
# weights 1 for every group (eq. 4 is an unweighted sum).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs512_mae.py',
    '../_base_/runtimes/mmpretrain.py',
]

model = dict(
    type='M3I',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='MAEViT', arch='b', img_size=224,
        patch_size=16),  # the mixer hides tokens (no encoder masking)
    neck=dict(
        type='M3IDecoder',
        in_channels=768,
        embed_dims=768,
        num_layers=4,
        num_heads=16),
    head=dict(
        type='M3IAttentionPoolHead',
        in_channels=768,
        num_classes=1000,
        num_heads=12,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    mixer=dict(type='M3IMixer', patch_size=16, mix_ratio=0.5),
    loss_weights=dict(intra=1.0, inter=1.0, cls=1.0),
    momentum=0.995,
    end_momentum=1.0,
    neg_weight=0.02,
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

# SiameseIM's colour pipelines (BYOL's), applied after crop + flip
colour = [
    dict(
        type='RandomApply',
        transforms=[
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.2,
                hue=0.1)
        ],
        prob=0.8),
    dict(
        type='RandomGrayscale',
        prob=0.2,
        keep_channels=True,
        channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='M3ITwoViews',
        crop=dict(
            type='RandomResizedCrop',
            scale=224,
            crop_ratio_range=(0.08, 1.0),
            backend='pillow',
            interpolation='bicubic'),
        flip_prob=0.5,
        input_pipeline=colour + [
            dict(
                type='GaussianBlur',
                magnitude_range=(0.1, 2.0),
                magnitude_std='inf',
                prob=1.0)
        ],
        target_pipeline=colour + [
            dict(
                type='GaussianBlur',
                magnitude_range=(0.1, 2.0),
                magnitude_std='inf',
                prob=0.1),
            dict(type='Solarize', thr=128, prob=0.2)
        ]),
    dict(type='PackInputs', algorithm_keys=('m3i_boxes', 'm3i_flips'))
]
train_dataloader = dict(
    batch_size=64, drop_last=True, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=6.25e-5 * 4096 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
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
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=40,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=360,
        by_epoch=True,
        begin=40,
        end=400,
        convert_to_iter_based=True)
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
# the lr above is for a total batch of 4096
auto_scale_lr = dict(base_batch_size=4096)
