# The nano GLID of glid_swin-nano_1xb16-300i_bundled-128px.py (4-stage Swin of
# width 32, 1 block per stage, window 2; 1-block BiFPN of width 32; 3-block
# query decoder of width 64) fine-tuned for detection: glid-detr_swin-b.py
# at smoke scale, so a nano pre-training checkpoint loads with load_from.
# 300 + 1,500 queries as the paper.
_base_ = ['./glid-detr_swin-b.py', './glid_swin-nano_parts.py']

model = dict(
    backbone={{_base_.glid_nano.backbone}},
    neck={{_base_.glid_nano.neck}},
    decoder={{_base_.glid_nano.decoder}},
    bbox_head=dict(embed_dims=64))
