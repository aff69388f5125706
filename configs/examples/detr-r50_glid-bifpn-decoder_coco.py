# Drop-in example (README "GLID's neck and decoder under another mmdet
# config"): mmdet's own DETR R-50 COCO config, data pipeline, schedule and
# CocoMetric unchanged, with the model swapped for a ResNet-50 + GLID's
# BiFPN + GLID query decoder + GLID's two-linear-layer head (H-DETR hybrid
# matching: 300 + 1,500 training queries, 300 at evaluation).
_base_ = ['mmdet::detr/detr_r50_8xb2-150e_coco.py']
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
# the glid_mm runtime (configs/_base_/runtimes/) on a stock config
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='AtomicCheckpointHook'),
]

model = dict(
    _delete_=True,
    type='GLIDDETR',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone=dict(
        type='ResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='BiFPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_repeats=3),
    decoder=dict(type='GLIDDecoder', in_channels=256, embed_dims=512),
    bbox_head=dict(type='GLIDDETRHead', num_classes=80),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=1.),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=100))
