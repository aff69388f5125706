# The nano GLID of glid_swin-nano_1xb16-300i_bundled-128px.py (4-stage Swin of
# width 32 with 1 block per stage and window 2, a 1-block BiFPN of width 32,
# a 3-block query decoder of width 64) fine-tuned for mask classification in
# mmdet: ../_base_/models/glid-maskformer_swin-b.py at smoke scale, so a
# nano pre-training checkpoint loads with load_from. 200 queries as the
# paper; 1,024 sampled points per mask (the Swin-B recipe's 12,544 exceed
# the pixels of a small 1/4 map).
_base_ = ['./glid-maskformer_swin-b.py']

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
    panoptic_head=dict(in_channels=64, mask_channels=32),
    train_cfg=dict(num_points=1024))
