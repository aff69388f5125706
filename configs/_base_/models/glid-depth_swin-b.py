# GLID fine-tuned for monocular depth in mmseg, Swin-B; GLID Sec. 3.2
# "Depth estimation" (eq. 5-7), Sec. 4: the pre-trained encoder, BiFPN and
# query decoder (glid_swin-b_finetune.py) with 64 queries [CLS] + e_i and
# the one-linear-layer bins head, BinsFormer's SI log loss on every decoder
# block, NYU's depth range. Drop path 0.1 (supp. Table 9, which gives no
# decoder drop path: the pre-training value 0). Configs set the data
# preprocessor's crop size.
_base_ = './glid_swin-b_finetune.py'

model = dict(
    type='GLIDDepthEstimator',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=0,  # padded depth = 0 = invalid for the loss
        test_cfg=dict(size_divisor=32)),
    decode_head=dict(
        type='GLIDDepthHead',
        min_depth=1e-3,  # BinsFormer's NYU range, metres
        max_depth=10.0,
        num_queries=64,  # Sec. 4, following BinsFormer
        in_channels=512,
        feat_channels=256,
        loss_decode=dict(type='SigLoss', loss_weight=10.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
