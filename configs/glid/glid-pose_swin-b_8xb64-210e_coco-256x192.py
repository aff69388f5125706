# GLID fine-tuning for COCO top-down keypoints, Swin-B (GLID Table 1 /
# Table 2 "COCO AP^kp"; Sec. 3.2 "Pose estimation", eq. 8; Sec. 4: "we
# train and evaluate on the cropped regions which contain person
# instances. We fine-tune for 210 epochs with 17 queries").
# Pre-trained encoder, BiFPN and query decoder are kept; 17 queries
# [CLS] + e_i (eq. 3), one per keypoint; the only new layer is the linear
# pose head (heatmap k = <1/4-scale BiFPN map, fc(query k)>, eq. 8) with
# smooth L1 on the codec's heatmaps (Sec. 3.2 losses).
# Supp. Table 8: AdamW lr 5e-4, betas (0.9, 0.999), weight decay 0.1,
# batch 512 (8 GPUs x 64), layer-wise lr decay 0.8, 210 epochs with lr x0.1
# at epochs 170 and 200, drop path 0.3. Everything else is mmpose's ViTPose
# recipe (inherited): UDP heatmaps 192x256 -> 48x64 (the 1/4-scale map),
# its augmentation, 500-iteration linear warm-up, grad clip 1.0, flip test
# on heatmaps, CocoMetric with the AP_H_56 person detections.
# Layer-wise decay over the Swin blocks by mmpretrain's
# LearningRateDecayOptimWrapperConstructor (lr x 0.8^(26 - 1 - depth) for
# Swin-B's 24 blocks + stem + subsequent); BiFPN, decoder and head are
# "subsequent" modules at the full 5e-4.
# Load the GLID pre-training checkpoint (backbone.*, neck.*, decoder.*):
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
_base_ = ('mmpose::body_2d_keypoint/topdown_heatmap/coco/'
          'td-hm_ViTPose-base_8xb64-210e_coco-256x192.py')
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
# the glid_mm runtime (configs/_base_/runtimes/) on a stock config
custom_hooks = [
    dict(type='SyncBuffersHook'),  # mmpose's default
    dict(type='FiniteLossHook'),
    dict(type='AtomicCheckpointHook'),
]

codec = dict(
    type='UDPHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)
model = dict(
    type='GLIDTopdownPoseEstimator',
    # the pre-training GLIDSwinTransformer without its mask token
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch='base',
        img_size=(256, 192),
        window_size=7,
        out_indices=(0, 1, 2, 3),
        pad_small_map=True,
        drop_path_rate=0.3),
    neck=dict(
        type='BiFPN',
        in_channels=[128, 256, 512, 1024],
        out_channels=256,
        num_repeats=11),
    # decoder drop path: not in supp. Table 8, so the pre-training value 0
    decoder=dict(
        type='GLIDDecoder',
        in_channels=256,
        embed_dims=512,
        num_layers=6,
        num_heads=8,
        feedforward_channels=2048,
        feat_levels=(3, 2, 1)),
    head=dict(
        _delete_=True,
        type='GLIDPoseHead',
        num_keypoints=17,
        in_channels=512,
        feat_channels=256,
        loss=dict(type='SmoothL1Loss', use_target_weight=True),
        decoder=codec))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='mmpretrain.LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.8,
        flat_decay_mult=0.0,  # biases, norms, BiFPN fusion weights
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }),
    clip_grad=dict(max_norm=1., norm_type=2))
