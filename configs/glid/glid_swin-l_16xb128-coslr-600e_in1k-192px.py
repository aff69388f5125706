# GLID pre-training of Swin-L (Table 1 "GLID Swin-L"): the Swin-B recipe with
# the large encoder; the BiFPN takes Swin-L's 192/384/768/1536 channels.
_base_ = './glid_swin-b_16xb128-coslr-600e_in1k-192px.py'

model = dict(
    backbone=dict(arch='large'), neck=dict(in_channels=[192, 384, 768, 1536]))
