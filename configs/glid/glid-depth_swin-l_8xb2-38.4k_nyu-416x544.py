# GLID fine-tuning for NYU-Depth-v2 depth, Swin-L (GLID Table 2 "GLID
# Swin-L", 0.287 RMSE): the Swin-B recipe with the large encoder; the BiFPN
# takes Swin-L's 192/384/768/1536 channels (as glid_swin-l pre-training).
_base_ = './glid-depth_swin-b_8xb2-38.4k_nyu-416x544.py'

model = dict(
    backbone=dict(arch='large'), neck=dict(in_channels=[192, 384, 768, 1536]))
