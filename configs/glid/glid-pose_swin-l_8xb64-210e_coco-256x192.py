# GLID fine-tuning for COCO top-down keypoints, Swin-L (GLID Table 2 "GLID
# Swin-L"): the Swin-B recipe with the large encoder; the BiFPN takes
# Swin-L's 192/384/768/1536 channels. Swin-L has Swin-B's depths
# (2, 2, 18, 2), so the layer-wise decay is the same.
_base_ = './glid-pose_swin-b_8xb64-210e_coco-256x192.py'

model = dict(
    backbone=dict(arch='large'), neck=dict(in_channels=[192, 384, 768, 1536]))
