# The nano GLID of glid_swin-nano_1xb16-300i_bundled-128px.py (4-stage Swin of
# width 32 with 1 block per stage and window 2, a 1-block BiFPN of width 32,
# a 3-block query decoder of width 64) fine-tuned for mask classification in
# mmdet: ../_base_/models/glid-maskformer_swin-b.py at smoke scale, so a
# nano pre-training checkpoint loads with load_from. 200 queries as the
# paper; 1,024 sampled points per mask (the Swin-B recipe's 12,544 exceed
# the pixels of a small 1/4 map).
_base_ = ['./glid-maskformer_swin-b.py', './glid_swin-nano_parts.py']

model = dict(
    backbone={{_base_.glid_nano.backbone}},
    neck={{_base_.glid_nano.neck}},
    decoder={{_base_.glid_nano.decoder}},
    panoptic_head=dict(in_channels=64, mask_channels=32),
    train_cfg=dict(num_points=1024))
