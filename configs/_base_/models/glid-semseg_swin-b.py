# GLID fine-tuned for semantic segmentation in mmseg, Swin-B; GLID Sec. 3.2
# "Image segmentation" (eq. 3-4), Sec. 4: the pre-trained encoder, BiFPN and
# query decoder (glid_swin-b_finetune.py) with 100 queries [CLS] + e_i
# (eq. 3) and one linear mask-classification head (eq. 4), supervised on
# every decoder block with Mask2Former's matching and losses; Mask2Former's
# semantic inference. Drop path 0.1 / decoder 0.2 (supp. Table 7). Configs
# set num_classes and the data preprocessor's crop size.
_base_ = './glid_swin-b_finetune.py'

model = dict(
    type='GLIDEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        test_cfg=dict(size_divisor=32)),
    decoder=dict(drop_path_rate=0.2),
    decode_head=dict(
        type='GLIDMaskSegHead',
        num_queries=100,  # Sec. 4: 100 for semantic segmentation
        in_channels=512,
        mask_channels=256),  # Mask2Former's losses / matching by default
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
