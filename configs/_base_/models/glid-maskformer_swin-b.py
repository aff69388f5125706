# GLID fine-tuned for mask classification in mmdet (instance / panoptic
# segmentation), Swin-B; GLID Sec. 3.2 "Image segmentation" (eq. 3-4), Sec. 4.
# The pre-training model (glid_swin-b.py: backbone, BiFPN neck, query
# decoder, same parameter names) with 200 queries [CLS] + e_i (eq. 3) and
# one linear mask-classification head (eq. 4) in place of the pixel head;
# Mask2Former's matching, losses (every decoder block) and fusion head.
# Drop path 0.1 (encoder) and 0.2 (decoder), supp. Table 7. Set the class
# counts on panoptic_head only (the detector copies them to the fusion head).
_base_ = './glid_swin-b_finetune.py'

model = dict(
    type='GLIDMaskFormer',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    decoder=dict(drop_path_rate=0.2),  # supp. Table 7
    panoptic_head=dict(
        type='GLIDMaskHead',
        num_things_classes=80,
        num_stuff_classes=53,
        num_queries=200,  # Sec. 4: 200 for instance and panoptic
        in_channels=512,
        mask_channels=256),  # Mask2Former's losses by default
    panoptic_fusion_head=dict(type='MaskFormerFusionHead'),
    train_cfg=dict(
        num_points=12544,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(
                    type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
            ]),
        sampler=dict(type='MaskPseudoSampler')),
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=True,
        max_per_image=100,
        iou_thr=0.8,
        filter_low_score=True),
    init_cfg=None)
