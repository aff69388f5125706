# Smoke test of the mmpose stack on real COCO keypoint samples: a stock
# top-down heatmap model (SimpleBaseline head) with a ResNet-18 trained from
# scratch for 2 iterations (batch 2, 192x256 crops) on CPU, then validated
# with mmpose's CocoMetric (OKS AP, xtcocotools COCOeval) on the same 4
# images (ground-truth boxes). Smoke numbers, not results.
#
# Model = the model section of mmpose's stock
# body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py
# (mmpose keeps no model-only base, so it is restated here with depth 18 and
# the matching 512-channel head input); schedule and runtime are the stock
# ones, the dataset base is the bundled samples.
_base_ = [
    '../_base_/runtimes/mmpose.py',
    '../_base_/datasets/coco_keypoints_samples.py'
]

model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),  # from scratch: no download
    head=dict(
        type='HeatmapHead',
        in_channels=512,
        out_channels=17,
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder={{_base_.codec}}),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True))

train_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader

# stock optimizer (Adam 5e-4, total batch 512) scaled to batch 2 would be
# 2e-6; the smoke run keeps the stock value: it checks wiring, not accuracy
optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = [
    dict(
        type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False)
]
train_cfg = dict(by_epoch=False, max_iters=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=2, save_best=None))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
