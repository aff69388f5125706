# The GLID Swin-B encoder-decoder that every fine-tuning model keeps (GLID
# Sec. 4: "we do not introduce architecture modifications except for
# task-specific linear head"): the backbone, BiFPN and query decoder of the
# pre-training model (glid_swin-b.py) under the same parameter names, so a
# pre-training checkpoint loads with load_from. The task model bases
# (glid-maskformer / glid-detr / glid-semseg / glid-depth) add the model
# type, data preprocessor and head, and set the decoder drop path of their
# recipe. custom_imports lives in the task bases / configs (the CamVid
# dataset base has its own, and mmengine refuses a key in two bases).

model = dict(
    # The pre-training GLIDSwinTransformer without its mask token (same
    # parameter names). Window 7 (pre-training: 6 at 192 px); mmpretrain
    # interpolates the relative position tables when loading. Drop path 0.1
    # (supp. Tables 6, 7, 9).
    backbone=dict(
        type='mmpretrain.SwinTransformer',
        arch='base',
        img_size=640,
        window_size=7,
        out_indices=(0, 1, 2, 3),
        pad_small_map=True,
        drop_path_rate=0.1),
    # as glid_swin-b.py (11 blocks, 5.0 M, supp. Table 2). SyncBN: the
    # fine-tuning recipes run 2 images per GPU (supp. Tables 6, 7, 9), where
    # per-GPU BatchNorm would estimate statistics from 2 images; SyncBN
    # keeps the pre-trained BN parameters and buffers (same names, loads
    # unchanged) with statistics over the global batch, as EfficientDet
    # trains its Bi-FPN. mmengine turns it into BN in one-process runs;
    # tools/train.py makes it gloo-capable for CPU processes.
    neck=dict(
        type='BiFPN',
        in_channels=[128, 256, 512, 1024],
        out_channels=256,
        num_repeats=11,
        norm_cfg=dict(type='SyncBN', momentum=0.01, eps=1e-3)),
    # 6 blocks of width 512 (Sec. 4); drop path 0 as in pre-training unless
    # the task recipe sets one (segmentation: 0.2, supp. Table 7)
    decoder=dict(
        type='GLIDDecoder',
        in_channels=256,
        embed_dims=512,
        num_layers=6,
        num_heads=8,
        feedforward_channels=2048,
        feat_levels=(3, 2, 1),
        drop_path_rate=0.0))
