# Nano sizes of the GLID encoder-decoder, those of the nano pre-training
# config (../../glid/glid_swin-nano_1xb16-300i_bundled-128px.py): a 4-stage
# Swin of width 32 with 1 block per stage and window 2, a 1-block BiFPN of
# width 32 and a 3-block query decoder of width 64. A nano fine-tuning
# config inherits a Swin-B task model base and this file, and merges
#   model = dict(backbone={{_base_.glid_nano.backbone}},
#                neck={{_base_.glid_nano.neck}},
#                decoder={{_base_.glid_nano.decoder}}, ...)
# so the nano model is the Swin-B recipe at smoke scale (same code path, and
# a nano pre-training checkpoint loads with load_from).
glid_nano = dict(
    backbone=dict(
        # a dict arch replaces the Swin-B base's 'base' string
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
        feedforward_channels=128))
