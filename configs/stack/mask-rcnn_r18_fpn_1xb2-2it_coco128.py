# Smoke test of the mmdet stack on real COCO128: a stock Mask R-CNN with a
# ResNet-18 FPN trained from scratch for 2 iterations (batch 2, images fit
# in 320x320) on CPU, then validated with CocoMetric (bbox + segm mAP,
# pycocotools COCOeval) on the first 4 images. COCO128 has no val split:
# these are training images. Smoke numbers, not results.
#
# Model = mmdet's mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py, which is exactly
# the composition of the stock bases below with the COCO instance dataset
# base; here the COCO128 dataset base (itself a child of that stock dataset
# base) replaces it (mmengine refuses a key that two bases define, so the
# stock config itself cannot be combined with it). The 1x schedule's values
# are those of the stock config.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco128_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../_base_/runtimes/mmdet.py'
]

model = dict(
    backbone=dict(
        depth=18,
        # from scratch (no download; pass load_from to fine-tune): train
        # every stage and BN statistics, as mmdet's scratch configs do
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    # after 2 iterations the 81-way class scores are ~1/81, under the stock
    # 0.05 threshold: keep the top 100 boxes so that COCOeval has detections
    # to score (with none, CocoMetric logs an error and reports no metric)
    test_cfg=dict(rcnn=dict(score_thr=0.0)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        # `instances` = the raw ground truth of the image, for the metric
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(indices=4, pipeline=test_pipeline))
test_dataloader = val_dataloader
# ann_file=None: CocoMetric builds the COCO ground truth from the `instances`
# of the images it evaluates. With the full instances.json it would count
# the objects of the 124 images not evaluated as missed.
val_evaluator = dict(ann_file=None)
test_evaluator = val_evaluator

# 2 iterations, validated at the end; lr of the stock 1x schedule (total
# batch 16, lr 0.02) scaled linearly to batch 2: 0.02 * 2 / 16. Only the
# stock warm-up is kept: the step decay at epochs 8 and 11 never comes.
optim_wrapper = dict(optimizer=dict(lr=0.0025))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500)
]
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=2)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
