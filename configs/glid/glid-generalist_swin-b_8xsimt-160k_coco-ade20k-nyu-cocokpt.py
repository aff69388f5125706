# GLID generalist, Swin-B, paper-size data (issue 23): one GLID Swin-B +
# Bi-FPN + query decoder shared by four tasks of three toolboxes, trained
# together by GPPF's SIMT on 8 GPUs (each process draws one task per
# iteration; a shared parameter's gradient is averaged over the processes
# that used it, a head's over the processes of its task; the shared Bi-FPN's
# BatchNorm uses cross-task statistics, GPPF Sec. 3.2):
#   det:   COCO detection, GLID DETR head (mmdet CocoMetric bbox)
#   seg:   ADE20K semantic segmentation (mmseg IoUMetric)
#   depth: NYU-Depth-V2 (mmseg DepthMetric)
#   pose:  COCO top-down keypoints (mmpose CocoMetric)
# Each task is its single-task Swin-B config, named by path; only what must
# agree for sharing is changed next to the path. Start from a GLID
# pre-training checkpoint (backbone.*, neck.*, decoder.* load; the per-task
# queries tasks.<task>.decoder.queries start from their initialisation):
#   bash tools/dist_train.sh THIS_CONFIG 8 --cfg-options load_from=CKPT
# Split the result into per-task checkpoints that each single-task config
# (and its toolbox's own tools/test.py) loads:
#   python tools/model_converters/multi_task_split.py \
#       work_dirs/.../iter_160000.pth OUT_DIR --config THIS_CONFIG
# Not trained by us (no GPUs); built by the config tests.
_base_ = '../_base_/runtimes/mmdet.py'

runner_type = 'TaskConfigRunner'
task_configs = dict(
    det='{{ fileDirname }}/glid-det_swin-b_8xb2-50e_coco.py',
    seg='{{ fileDirname }}/glid-semseg_swin-b_8xb2-160k_ade20k-640x640.py',
    depth='{{ fileDirname }}/glid-depth_swin-b_8xb2-38.4k_nyu-416x544.py',
    pose='{{ fileDirname }}/glid-pose_swin-b_8xb64-210e_coco-256x192.py')

# Shared: backbone, Bi-FPN and decoder blocks (GLID Sec. 4 keeps all but the
# top linear head; the queries stay per task since their count is the
# task's: 300 + 1,500 for detection, 100 for segmentation, one per keypoint
# for pose). Our choices, to make the four configs agree: the Bi-FPN's BN
# is CrossTaskSyncBN with the recipes' momentum / eps; decoder drop path
# 0.1 (the recipes use 0.0 for detection and pose, 0.2 for segmentation);
# backbone drop path 0.1 (supp. Tables 6, 7, 9; pose uses 0.3).
shared_neck = dict(
    norm_cfg=dict(type='CrossTaskSyncBN', momentum=0.01, eps=1e-3))
shared_decoder = dict(drop_path_rate=0.1)
model = dict(
    type='GPPFMultiTaskModel',
    backbone=dict(
        type='mmpretrain.SwinTransformer',
        arch='base',
        img_size=640,
        window_size=7,
        out_indices=(0, 1, 2, 3),
        pad_small_map=True,
        drop_path_rate=0.1),
    shared_parts=('neck', 'decoder.input_proj', 'decoder.level_embed',
                  'decoder.layers'),
    tasks=dict(
        det=dict(
            from_config=task_configs['det'],
            neck=shared_neck,
            decoder=shared_decoder),
        seg=dict(
            from_config=task_configs['seg'],
            neck=shared_neck,
            decoder=shared_decoder),
        depth=dict(
            from_config=task_configs['depth'],
            neck=shared_neck,
            decoder=shared_decoder),
        pose=dict(
            from_config=task_configs['pose'],
            neck=shared_neck,
            decoder=shared_decoder)))
# Each task's own per-GPU batch and pipeline (2 images for det / seg /
# depth, 64 person crops for pose).
train_dataloader = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    depth=dict(from_config=task_configs['depth']),
    pose=dict(from_config=task_configs['pose']))
val_dataloader = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    depth=dict(from_config=task_configs['depth']),
    pose=dict(from_config=task_configs['pose']))
val_evaluator = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    depth=dict(from_config=task_configs['depth']),
    pose=dict(from_config=task_configs['pose']))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# Equal task weights: neither paper gives a generalist's (our choice).
# 160k iterations: the longest single-task schedule in iterations
# (segmentation, supp. Table 7); 8 processes x 160k = 1.28 M task batches.
max_iters = 160000
train_cfg = dict(
    type='SIMTTrainLoop',
    max_iters=max_iters,
    task_weights=dict(det=1.0, seg=1.0, depth=1.0, pose=1.0),
    val_interval=16000)
val_cfg = dict(type='MultiTaskValLoop')
test_cfg = dict(type='MultiTaskTestLoop')
model_wrapper_cfg = dict(type='SIMTDistributedWrapper')
# AdamW lr 1e-4, weight decay 0.05, betas (0.9, 0.999), backbone lr x0.1
# (supp. Tables 6, 7: detection and segmentation; depth also uses 1e-4);
# the pose head at 5e-4 (supp. Table 8's lr; its layer-wise decay and
# weight decay 0.1 are not used for the shared parts: our choice). No decay
# on norms, position tables, [CLS], e_i and level embeddings.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='PartwiseOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'tasks.pose.head': dict(lr_mult=5.0),
            'relative_position_bias_table': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=0.01, norm_type=2))  # Mask2Former's (seg)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0,
        power=0.9,
        begin=1500,
        end=max_iters,
        by_epoch=False)
]
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=16000,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
