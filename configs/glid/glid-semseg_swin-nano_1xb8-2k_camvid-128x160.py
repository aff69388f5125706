# GLID semantic segmentation fine-tuning at smoke scale on real CamVid
# (11 classes): the nano GLID of
# glid_swin-nano_1xb16-300i_bundled-128px.py (Swin width 32, 1-block BiFPN of
# width 32, 3-block decoder of width 64) with 100 queries [CLS] + e_i (eq. 3)
# and the one-linear-layer mask head (eq. 4), batch 8 of 128x160 crops,
# 2,000 iterations, validated on the 101 val frames with mmseg's IoUMetric.
# Same code path as the ADE20K recipe
# (glid-semseg_swin-b_8xb2-160k_ade20k-640x640.py); smoke numbers, not
# results. Fine-tune from the nano pre-training checkpoint with
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
#   (CKPT: the nano pre-training run's iter_300.pth)
# (backbone, neck and decoder load; decode_head.predictor starts new).
_base_ = [
    '../_base_/runtimes/mmseg.py', '../_base_/datasets/camvid.py',
    '../_base_/models/glid-semseg_swin-b.py',
    '../_base_/schedules/glid-nano_adamw-poly-2k.py'
]

crop_size = (128, 160)  # (h, w)
num_classes = 11
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
    decode_head=dict(
        num_classes=num_classes,
        in_channels=64,
        mask_channels=32,
        # Mask2Former's matching / losses; 1,024 points cover a 32x40 mask
        train_cfg=dict(
            num_points=1024,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='ClassificationCost', weight=2.0),
                    dict(
                        type='CrossEntropyLossCost',
                        weight=5.0,
                        use_sigmoid=True),
                    dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='MaskPseudoSampler'))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(160, 120),  # (w, h): a third of the 480x360 frame
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# The ADE20K recipe's AdamW (supp. Table 7) with a 5x larger lr for the short
# run: 5e-4, backbone 5e-5 (lr_mult 0.1, as 1e-5 / 1e-4 in the paper).
max_iters = 2000
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
