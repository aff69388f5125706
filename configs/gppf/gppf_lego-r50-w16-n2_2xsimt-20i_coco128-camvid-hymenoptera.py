# GPPF SIMT smoke run on the bundled data (CPU, minutes): three tasks of
# three toolboxes trained together on one LegoResNet-50 (1/4 width, N = 2
# units per lego layer, soft Gumbel-Softmax, cross-task SyncBN):
#   det: COCO128 Mask R-CNN (mmdet), batch 2, 256 px
#   seg: CamVid UperNet + aux FCN (mmseg), batch 2, 128x160 crops
#   cls: hymenoptera linear classifier (mmpretrain), batch 8, 112 px
# Every iteration each process draws its task with the App. D.1 weights
# (COCO 2.5, ADE20K 1.0, IN21K 4.0 reused for det/seg/cls), runs it, and
# gradients are averaged over the processes that used them (Sec. 3.2).
#   bash tools/dist_train.sh <this config> 2      (gloo on CPU)
#   python tools/train.py <this config>           (one process)
# Smoke numbers, not results.
_base_ = '../_base_/runtimes/mmdet.py'

# Each task is a standard single-task config in ./tasks (trainable alone:
# the single-task baseline), named by path: every task takes that config's
# model (without backbone: every task shares `model.backbone`; `_scope_`
# names its toolbox), its train_dataloader, val_dataloader and
# val_evaluator (test_*: its test_*), with the changes written next to the
# path. TaskConfigRunner reads the files once, when the runner is built,
# and GPPFMultiTaskModel and the SIMT / multi-task loops receive plain
# dicts (glid_mm/utils/gppf_task_configs.py); mmengine refuses keys defined
# by two bases, so the task configs cannot be listed in `_base_`.
runner_type = 'TaskConfigRunner'
task_configs = dict(
    det='{{ fileDirname }}/tasks/'
    'mask-rcnn_lego-r50-w16-n2_1xb2-20i_coco128-256px.py',
    seg='{{ fileDirname }}/tasks/'
    'upernet_lego-r50-w16-n2_1xb2-20i_camvid-128x160.py',
    cls='{{ fileDirname }}/tasks/'
    'lego-r50-w16-n2_1xb8-20i_hymenoptera-112px.py')
width = 16  # LegoResNet base_channels (ResNet-50: 64), as in the tasks
model = dict(
    type='GPPFMultiTaskModel',
    backbone=dict(
        type='LegoResNet',
        task_names=('det', 'seg', 'cls'),
        depth=50,
        num_units=2,
        stem_channels=width,
        base_channels=width,
        norm_cfg=dict(type='CrossTaskSyncBN')),
    tasks=dict(
        # After 20 smoke iterations Mask R-CNN scores every box below
        # mmdet's 0.05 and CocoMetric would report nothing: keep the 100
        # best boxes at any score.
        det=dict(
            from_config=task_configs['det'],
            test_cfg=dict(rcnn=dict(score_thr=0.0))),
        seg=dict(from_config=task_configs['seg']),
        cls=dict(from_config=task_configs['cls'])))
train_dataloader = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    cls=dict(from_config=task_configs['cls']))
# Per-task validation (MultiTaskValLoop): each task on its own data with its
# own toolbox's metric, logged as det/coco/bbox_mAP, seg/mIoU,
# cls/accuracy/top1. Small subsets keep one validation to seconds on a CPU:
# COCO128 first 8 images (CocoMetric bbox + segm; COCO128 has no val split,
# these are training images), 4 CamVid val frames, 4 ants + 4 bees.
val_dataloader = dict(
    det=dict(from_config=task_configs['det'], dataset=dict(indices=8)),
    seg=dict(from_config=task_configs['seg'], dataset=dict(indices=4)),
    cls=dict(
        from_config=task_configs['cls'],
        dataset=dict(indices=[0, 1, 2, 3, 70, 71, 72, 73])))
val_evaluator = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    cls=dict(from_config=task_configs['cls']))

train_cfg = dict(
    type='SIMTTrainLoop',
    max_iters=20,
    task_weights=dict(det=2.5, seg=1.0, cls=4.0),
    val_interval=10)
val_cfg = dict(type='MultiTaskValLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(type='MultiTaskTestLoop')
model_wrapper_cfg = dict(type='SIMTDistributedWrapper')
# App. D.1: SGD lr 0.16 on 56 processes; per process 0.16 / 56, here x 2
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.0057, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2, end=20)
]
custom_hooks = [
    # App. D.1: tau 5.0 -> 0.01 linearly over 90 % of training (45w of 50w)
    dict(type='GumbelTemperatureHook', start=5.0, end=0.01, decay_iters=18),
    # Sec. 3.2 / App. B: every task's selection probabilities p_l^t after
    # each iteration -> vis_data/scalars.json; plot them with
    # tools/analysis/gppf_plot_selection.py
    dict(type='GPPFSelectionLoggerHook', interval=1),
    dict(type='FiniteLossHook'),  # as configs/_base_/runtimes/
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=20))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))  # CPU; 'nccl' on GPUs
randomness = dict(seed=0)
