# GLID fine-tuning for COCO object detection, Swin-L (GLID Table 1
# "GLID Swin-L"): the Swin-B recipe with the large encoder; the BiFPN takes
# Swin-L's 192/384/768/1536 channels (as glid_swin-l pre-training).
_base_ = './glid-det_swin-b_8xb2-50e_coco.py'

model = dict(
    backbone=dict(arch='large'), neck=dict(in_channels=[192, 384, 768, 1536]))
