# GPPF tiny classification task (hymenoptera, ants vs bees): the "cls" task
# of ../gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py, and
# on its own a single-task smoke run (20 iterations, batch 8, CPU). Stock
# mmpretrain ImageClassifier (global average pooling + linear head, GPPF
# Sec. 4.1) on a LegoResNet-50 at 1/4 width (last stage: 512 channels),
# 112 px crops. Smoke numbers, not results.
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    '../../_base_/datasets/hymenoptera.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    '../../_base_/runtimes/mmpretrain.py'
]

width = 16  # LegoResNet base_channels (ResNet-50: 64)
model = dict(
    backbone=dict(
        _delete_=True,
        type='LegoResNet',
        task_names=('cls', ),
        depth=50,
        num_units=2,
        stem_channels=width,
        base_channels=width,
        out_indices=(3, ),
        norm_cfg=dict(type='CrossTaskSyncBN')),
    head=dict(in_channels=width * 32, num_classes=2, topk=(1, )))

train_dataloader = dict(batch_size=8, num_workers=0)
val_dataloader = dict(batch_size=8, num_workers=0)
test_dataloader = val_dataloader

# stock lr 0.1 is for total batch 256; batch 8: 0.1 * 8 / 256
optim_wrapper = dict(optimizer=dict(lr=0.003125))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=20)
]
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=20, val_interval=20)
val_cfg = dict()
test_cfg = dict()
custom_hooks = [
    dict(type='GumbelTemperatureHook', start=5.0, end=0.01, decay_iters=10),
    dict(type='FiniteLossHook'),  # as configs/_base_/runtimes/
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=20))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
