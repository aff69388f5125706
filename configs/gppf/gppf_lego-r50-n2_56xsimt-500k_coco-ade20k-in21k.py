# GPPF-R50 multi-task pre-training (Sec. 3.2, Table 1 row "SIMT + SyncBN +
# DyNet (N=2)", App. D.1) with three of the paper's eight tasks, one per
# toolbox, on 7 servers x 8 GPUs = 56 SIMT processes:
#   det: COCO Mask R-CNN, LSJ 1024, batch 8 per GPU, weight 2.5
#   seg: ADE20K UperNet, 512x512, batch 8 per GPU, weight 1.0
#   cls: ImageNet-21K, 224 px, batch 96 per GPU, weight 4.0
# (App. D.1 weights and batch sizes). Every iteration each GPU draws its
# task, runs it, and each gradient is averaged over the GPUs that used it;
# the backbone's BN statistics are synchronised over all GPUs.
#   NNODES=7 NODE_RANK=<i> MASTER_ADDR=<host> \
#       bash tools/dist_train.sh <this config> 8
# Extract a task's path afterwards (fixed-path fine-tuning, Sec. 3.3):
#   python tools/gppf_extract_backbone.py <ckpt> <out.pth> --task det
_base_ = '../_base_/runtimes/mmdet.py'

# Each task is a standard single-task config in ./tasks (the single-task
# baseline), named by path: every task takes that config's model (without
# backbone: every task shares `model.backbone`; `_scope_` names its
# toolbox), its train_dataloader and, where it has them, its val_dataloader
# / val_evaluator (test_*: its test_*). TaskConfigRunner reads the files
# once, when the runner is built, and GPPFMultiTaskModel and the SIMT /
# multi-task loops receive plain dicts (glid_mm/utils/gppf_task_configs.py);
# mmengine refuses keys defined by two bases, so the task configs cannot be
# listed in `_base_`.
runner_type = 'TaskConfigRunner'
task_configs = dict(
    det='{{ fileDirname }}/tasks/'
    'mask-rcnn_lego-r50-n2_8xb8-lsj-4conv1fc_coco-1024.py',
    seg='{{ fileDirname }}/tasks/'
    'upernet_lego-r50-n2_8xb8-160k_ade20k-512x512.py',
    cls='{{ fileDirname }}/tasks/lego-r50-n2_8xb96-mixup-cutmix_in21k.py')
model = dict(
    type='GPPFMultiTaskModel',
    backbone=dict(
        type='LegoResNet',
        task_names=('det', 'seg', 'cls'),
        depth=50,
        num_units=2,  # Table 1: N = 2 (N = 3 brings no further gain)
        norm_cfg=dict(type='CrossTaskSyncBN'),
        with_cp=True),  # App. D.1: "Model Checkpoint is used"
    tasks=dict(
        det=dict(from_config=task_configs['det']),
        seg=dict(from_config=task_configs['seg']),
        cls=dict(from_config=task_configs['cls'])))
train_dataloader = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    cls=dict(from_config=task_configs['cls']))

train_cfg = dict(
    type='SIMTTrainLoop',
    max_iters=500000,  # App. D.1: 50w iterations
    task_weights=dict(det=2.5, seg=1.0, cls=4.0),
    val_interval=50000)
# Per-task validation (MultiTaskValLoop; Table 1 scores each task of the
# joint model): COCO val2017 box / mask AP (det/coco/bbox_mAP,
# det/coco/segm_mAP), ADE20K val mIoU (seg/mIoU) from the task configs, and
# IN21K top-1 / top-5 (cls/accuracy/top1) on the val split of the processed
# ImageNet-21K-P ([69], fall11: imagenet21k_val/<wnid>/*.JPEG, 561,052
# images; mmpretrain's stock in21k config has none). ImageNet-1K val cannot
# score the 11,221-way head; IN-1K is a fine-tuning task (Sec. 4.3).
val_dataloader = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    cls=dict(
        batch_size=128,
        num_workers=5,
        dataset=dict(
            type='ImageNet21k',
            data_root='data/imagenet21k_resized/',  # as the cls task's
            split='',
            data_prefix='imagenet21k_val',
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='ResizeEdge', scale=256, edge='short'),
                dict(type='CenterCrop', crop_size=224),
                dict(type='PackInputs')
            ]),
        sampler=dict(type='DefaultSampler', shuffle=False)))
val_evaluator = dict(
    det=dict(from_config=task_configs['det']),
    seg=dict(from_config=task_configs['seg']),
    cls=dict(type='Accuracy', topk=(1, 5)))
val_cfg = dict(type='MultiTaskValLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(type='MultiTaskTestLoop')
model_wrapper_cfg = dict(type='SIMTDistributedWrapper')
# App. D.1: SGD, lr 0.16 for the 56 processes, momentum 0.9, wd 5e-4;
# cosine decay after a 5w-iteration warm-up
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.16, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=False,
        begin=0,
        end=50000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50000, end=500000)
]
custom_hooks = [
    # App. D.1: tau 5.0 -> 0.01 linearly by 45w iterations, then held
    dict(
        type='GumbelTemperatureHook', start=5.0, end=0.01, decay_iters=450000),
    # Sec. 3.2 / App. B: selection probabilities p_l^t (Fig. 11 plots them
    # every 1w iterations) -> vis_data/scalars.json; plot them with
    # tools/analysis/gppf_plot_selection.py
    dict(type='GPPFSelectionLoggerHook', interval=1000),
    dict(type='FiniteLossHook'),  # as configs/_base_/runtimes/
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=10000,
        max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
