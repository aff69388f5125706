# The nano GLID of glid_swin-nano_1xb16-300i_bundled-128px.py (4-stage Swin of
# width 32, 1 block per stage, window 2; 1-block BiFPN of width 32; 3-block
# query decoder of width 64) fine-tuned for detection: glid-detr_swin-b.py
# at smoke scale, so a nano pre-training checkpoint loads with load_from.
# 300 + 1,500 queries as the paper.
_base_ = ['./glid-detr_swin-b.py']

model = dict(
    # GLIDSwinTransformer's arch='nano' for mmpretrain's Swin (which has no
    # such preset; the dict replaces the Swin-B base's 'base' string)
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=32,
            depths=[1, 1, 1, 1],
            num_heads=[1, 2, 4, 8]),
        window_size=2),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=32, num_repeats=1),
    decoder=dict(
        in_channels=32,
        embed_dims=64,
        num_layers=3,
        num_heads=4,
        feedforward_channels=128),
    bbox_head=dict(embed_dims=64))
