# Linear probe on hymenoptera (ants vs bees: 243 train, 153 val images) of
# the tiny ViT that configs/m3i/m3i*_vit-tiny-p16_1xb8-200i_* pre-train:
# the encoder frozen (all patch-embedding and transformer layers, final
# norm), the mean of its patch tokens, one linear layer. Used for the M3I /
# w/o-mix / no-pre-training comparison of docs/results.md:
#   python tools/model_converters/m3i_to_backbone.py M3I_CKPT backbone.pth
#   python tools/train.py THIS_CONFIG --cfg-options load_from=backbone.pth
# (without load_from the frozen encoder is random: the no-pre-training row).
# Note: the tiny M3I pre-training itself uses the hymenoptera train labels
# as its category target (Sec. 3.4), so this probe measures M3I's
# supervised + self-supervised mixture, not self-supervision alone.
_base_ = [
    '../_base_/runtimes/mmpretrain.py', '../_base_/datasets/hymenoptera.py'
]
default_scope = 'mmpretrain'

img_size = 64
model = dict(
    type='ImageClassifier',
    # the M3I tiny encoder's arch (MAEViT there, VisionTransformer here:
    # same parameter names)
    backbone=dict(
        type='VisionTransformer',
        arch=dict(
            embed_dims=64, num_layers=2, num_heads=2,
            feedforward_channels=128),
        img_size=img_size,
        patch_size=16,
        frozen_stages=2,  # every layer, the patch embedding and final norm
        out_type='avg_featmap'),
    head=dict(
        type='LinearClsHead',
        num_classes=2,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, )))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.3, 1)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=72, edge='short'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.0))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30)
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=30)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=4),
    checkpoint=dict(type='CheckpointHook', interval=30, max_keep_ckpts=1))
randomness = dict(seed=0)
