# GLID pose fine-tuning at smoke scale on the bundled COCO keypoint samples
# (../_base_/datasets/coco_keypoints_samples.py: 12 person instances of 4
# val2017 images, used for train and val): the nano GLID of
# glid_swin-nano_1xb16-300i_bundled-128px.py (Swin width 32, 1-block BiFPN
# of width 32, 3-block decoder of width 64) with 17 keypoint queries and
# the eq. 8 head, MSRA heatmaps 192x256 -> 48x64, flip test, CocoMetric.
# Same code path as the COCO recipe
# (glid-pose_swin-b_8xb64-210e_coco-256x192.py); smoke numbers, not
# results. Fine-tune from the nano pre-training checkpoint with
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
_base_ = [
    '../_base_/runtimes/mmpose.py',
    '../_base_/datasets/coco_keypoints_samples.py'
]

codec = dict(
    type='MSRAHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)
model = dict(
    type='GLIDTopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='mmpretrain.SwinTransformer',
        arch=dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
        img_size=(256, 192),
        out_indices=(0, 1, 2, 3),
        stage_cfgs=dict(block_cfgs=dict(window_size=2)),
        pad_small_map=True,
        drop_path_rate=0.1),
    neck=dict(
        type='BiFPN',
        in_channels=[32, 64, 128, 256],
        out_channels=32,
        num_repeats=1),
    decoder=dict(
        type='GLIDDecoder',
        in_channels=32,
        embed_dims=64,
        num_layers=3,
        num_heads=4,
        feedforward_channels=128,
        feat_levels=(3, 2, 1)),
    head=dict(
        type='GLIDPoseHead',
        num_keypoints=17,
        in_channels=64,
        feat_channels=32,
        loss=dict(type='SmoothL1Loss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True))

train_dataloader = dict(batch_size=4)

# the COCO recipe's AdamW and step schedule, without layer decay (a 4-block
# encoder) and at a 2x larger lr for the short run
max_epochs = 60
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }),
    clip_grad=dict(max_norm=1., norm_type=2))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=30, start_factor=0.001, by_epoch=False),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        milestones=[48, 57],  # 170 / 210 and 200 / 210 of the run
        gamma=0.1,
        by_epoch=True)
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
