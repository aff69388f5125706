# Ablation of the encoder's input at nano scale: the SimMIM-style mask-token
# encoder (masked tokens replaced by a learnable token, Swin on the full
# grid) instead of the default visible-token encoder; everything else as
# glid_swin-nano_1xb16-300i_bundled-128px.py (same data, masks, decoder).
#   python tools/train.py configs/glid/glid-masktoken_swin-nano_1xb16-300i_bundled-128px.py  # noqa: E501
_base_ = './glid_swin-nano_1xb16-300i_bundled-128px.py'

model = dict(backbone=dict(mask_mode='mask_token'))
