# GLID pre-training model, Swin-B encoder (GLID Sec. 3.1 / Sec. 4):
# Swin-B (visible tokens only) -> BiFPN over its four stages (1/4..1/32) ->
# 6-block query decoder of width 512 with [CLS] + one mask query per masked 32
# px patch -> linear head to the patch's 32 * 32 * 3 pixels, MSE on masked
# patches (eq. 2).

model = dict(
    type='GLID',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='GLIDSwinTransformer',
        arch='base',
        img_size=192,
        out_indices=(0, 1, 2, 3),
        # the encoder processes only the visible tokens (Sec. 3.1, "following
        # MAE"): 9 of 36 32-px units at 75 % masking; the mask-token ablation
        # is glid-masktoken_swin-b_16xb128-coslr-300e_in1k-192px.py
        mask_mode='visible',
        # 192 px: token maps 48/24/12/6, window 6 as SimMIM's Swin-B
        stage_cfgs=dict(block_cfgs=dict(window_size=6)),
        drop_path_rate=0.0),
    # 256 channels x 11 blocks: 33.3 GFLOPs / 5.0 M params at 640x640, the
    # size of supp. Table 2 (33.8 G / 5.0 M), measured by
    # tools/benchmark/model_complexity.py
    # with_cp: each Bi-FPN node keeps only its inputs and output for
    # backward (BN input recovered from its output, the cheap part
    # recomputed); same results, less activation memory (peak memory of the
    # step against SimMIM's: docs/benchmarks.md)
    neck=dict(
        type='BiFPN',
        in_channels=[128, 256, 512, 1024],
        out_channels=256,
        num_repeats=11,
        with_cp=True),
    decoder=dict(
        type='GLIDDecoder',
        in_channels=256,
        embed_dims=512,
        num_layers=6,
        num_heads=8,
        feedforward_channels=2048,
        feat_levels=(3, 2, 1),
        with_mask_token=True),
    head=dict(
        type='GLIDPretrainHead',
        in_channels=512,
        patch_size=32,
        norm_pix=False,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))
