# GLID fine-tuning for ADE20K panoptic segmentation, Swin-L (GLID Table 2
# "GLID Swin-L"): the Swin-B recipe with the large encoder; the BiFPN takes
# Swin-L's 192/384/768/1536 channels (as glid_swin-l pre-training).
_base_ = './glid-panseg_swin-b_8xb2-160k_ade20k-640x640.py'

model = dict(
    backbone=dict(arch='large'), neck=dict(in_channels=[192, 384, 768, 1536]))
