# GLID generalist, nano, on the bundled data (CPU, minutes; issue 23):
# one GLID Swin + Bi-FPN + query decoder shared by four tasks of three
# toolboxes, trained together by GPPF's SIMT (each process draws one task
# per iteration; a shared parameter's gradient is averaged over the
# processes that used it, a head's over the processes of its task; the
# shared Bi-FPN's BatchNorm uses cross-task statistics):
#   det:   GLID DETR on COCO128 (mmdet, CocoMetric bbox)
#   seg:   GLID semantic segmentation on CamVid (mmseg, IoUMetric)
#   depth: GLID depth on the NYU frames (mmseg, DepthMetric)
#   pose:  GLID top-down pose on the COCO keypoint samples (mmpose,
#          CocoMetric keypoints)
#   bash tools/dist_train.sh <this config> 2      (gloo on CPU)
#   python tools/train.py <this config>           (one process)
# Smoke numbers, not results. Each task is its single-task nano config,
# named by path (TaskConfigRunner reads them once, when the runner is
# built); only what must agree for sharing is changed next to the path.
_base_ = [
    '../_base_/runtimes/mmdet.py',
    '../_base_/schedules/glid-nano_adamw-poly-2k.py'
]

runner_type = 'TaskConfigRunner'
task_configs = dict(
    det='{{ fileDirname }}/glid-det_swin-nano_1xb8-2k_coco128-320x240.py',
    seg='{{ fileDirname }}/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py',
    depth='{{ fileDirname }}/glid-depth_swin-nano_1xb2-300i_nyu-96x128.py',
    pose='{{ fileDirname }}/'
    'glid-pose_swin-nano_1xb4-60e_coco-samples-256x192.py')

# Shared by every task (GLID Sec. 4: all but the top linear head; here the
# queries stay per task too, since their count is the task's: 300 + 1,500
# for detection, 100 for segmentation, 64 for depth, one per keypoint).
# Our choices, to make the four configs agree: the Bi-FPN's BN is
# CrossTaskSyncBN (SIMT's cross-task statistics; the single-task configs
# use SyncBN / BN), the decoder's drop path 0.1 (the single-task configs
# use 0.0 / 0.2 / 0.0 / 0.0).
shared_neck = dict(
    norm_cfg=dict(type='CrossTaskSyncBN', momentum=0.01, eps=0.001))
shared_decoder = dict(drop_path_rate=0.1)
model = dict(
    type='GPPFMultiTaskModel',
    backbone=dict(
        type='mmpretrain.SwinTransformer',
        arch=dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
        img_size=640,
        window_size=2,
        out_indices=(0, 1, 2, 3),
        pad_small_map=True,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN')),
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
# Batch 2 per task and process (our choice for 2 CPU cores).
train_dataloader = dict(
    det=dict(from_config=task_configs['det'], batch_size=2),
    seg=dict(from_config=task_configs['seg'], batch_size=2),
    depth=dict(from_config=task_configs['depth'], batch_size=2),
    pose=dict(from_config=task_configs['pose'], batch_size=2))
# Per-task validation (MultiTaskValLoop) with each toolbox's own metric,
# logged as det/coco/bbox_mAP, seg/mIoU, depth/rmse, pose/coco/AP; small
# subsets keep one validation to seconds on a CPU.
val_dataloader = dict(
    det=dict(from_config=task_configs['det'], dataset=dict(indices=8)),
    seg=dict(from_config=task_configs['seg'], dataset=dict(indices=4)),
    depth=dict(from_config=task_configs['depth'], dataset=dict(indices=4)),
    pose=dict(from_config=task_configs['pose']))
val_evaluator = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    depth=dict(from_config=task_configs['depth']),
    pose=dict(from_config=task_configs['pose']))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# Equal task weights (the GLID paper gives none for a generalist; our
# choice).
train_cfg = dict(
    type='SIMTTrainLoop',
    max_iters=40,
    task_weights=dict(det=1.0, seg=1.0, depth=1.0, pose=1.0),
    val_interval=40)
val_cfg = dict(type='MultiTaskValLoop')
test_cfg = dict(type='MultiTaskTestLoop')
model_wrapper_cfg = dict(type='SIMTDistributedWrapper')
# The nano single-task recipes' AdamW (../_base_/schedules/
# glid-nano_adamw-poly-2k.py: lr 5e-4, weight decay 0.05, no decay on norms,
# position tables, tokens and embeddings, backbone lr x 0.1), clipped as
# the detection recipe.
optim_wrapper = dict(clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=4, end=40)
]
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=40))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))  # CPU; 'nccl' on GPUs
randomness = dict(seed=0)
