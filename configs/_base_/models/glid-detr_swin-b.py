# GLID fine-tuned for object detection in mmdet, Swin-B; GLID Sec. 3.2
# "Object detection" (eq. 3), Sec. 4 Fine-tuning, supp. Table 6.
# The pre-training model (glid_swin-b.py: backbone, BiFPN neck, query
# decoder, same parameter names) with queries [CLS] + e_i (eq. 3) and two
# linear layers (class, box) in place of the pixel head; DETR's matching and
# losses on every decoder block; H-DETR hybrid matching: 300 one-to-one +
# 1,500 one-to-many queries in training, 300 in evaluation (Sec. 4).
# Drop path 0.1 in the encoder (supp. Table 6, which gives no decoder drop
# path: 0 here, unlike the 0.2 of the segmentation recipes).
_base_ = './glid_swin-b_finetune.py'

model = dict(
    type='GLIDDETR',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(img_size=800),
    bbox_head=dict(
        type='GLIDDETRHead',
        num_classes=80,
        embed_dims=512,
        num_queries=300,  # Sec. 4: 300 queries in evaluation
        num_queries_one2many=1500,  # + 1,500 = 1,800 in training (H-DETR)
        k_one2many=6,  # H-DETR's defaults
        lambda_one2many=1.0,
        # DETR's losses (softmax CE with no-object weight 0.1, L1 5, GIoU 2)
        loss_cls=dict(
            type='CrossEntropyLoss',
            bg_cls_weight=0.1,
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=1.),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=100))
