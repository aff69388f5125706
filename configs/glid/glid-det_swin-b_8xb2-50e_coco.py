# GLID fine-tuning for COCO object detection, Swin-B (GLID Table 1 "AP^box";
# Sec. 3.2 "Object detection"; Sec. 4; supp. B.2 and Table 6).
# Model: ../_base_/models/glid-detr_swin-b.py (two linear layers on the
# pre-trained decoder; 1,800 training / 300 evaluation queries, H-DETR
# hybrid matching). Schedule (supp. Table 6): AdamW lr 1e-4, backbone 1e-5,
# weight decay 0.05, betas (0.9, 0.999), batch 16 (8 GPUs x 2), 50 epochs,
# lr x0.1 at epoch 40; drop path 0.1. Augmentation: DETR's multi-scale
# recipe (mmdet's detr_r50_8xb2-150e_coco.py pipeline). Evaluated with
# mmdet's CocoMetric (bbox) on val2017 (data/coco/, mmdet's layout).
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
#   (CKPT: a GLID Swin pre-training checkpoint)
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py', '../_base_/runtimes/mmdet.py',
    '../_base_/models/glid-detr_swin-b.py'
]

short_sides = [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(
                type='RandomChoiceResize',
                scales=[(s, 1333) for s in short_sides],
                keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(400, 1333), (500, 1333), (600, 1333)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=(384, 600),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=[(s, 1333) for s in short_sides],
                            keep_ratio=True)
                    ]]),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=2,  # x 8 GPUs = 16
    dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper',
    # part multipliers and kind rules combine (mmengine's default applies
    # only the longest matching key): glid_mm's constructor
    constructor='PartwiseOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # DETR's gradient clipping (not in Table 6; the DETR recipe GLID follows)
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'backbone': dict(lr_mult=0.1),  # 1e-5
            'relative_position_bias_table': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }))
max_epochs = 50
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[40],
        gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='coco/bbox_mAP'))
# the recipe's total batch; mmdet's --auto-scale-lr scales from it
auto_scale_lr = dict(base_batch_size=16)
