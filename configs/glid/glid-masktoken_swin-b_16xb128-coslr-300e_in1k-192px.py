# Ablation of the encoder's input on the 300-epoch schedule: the SimMIM-style
# mask-token encoder (masked 4 px tokens replaced by a learnable token, Swin
# on the full 48 x 48 grid) instead of the default visible-token encoder
# (GLID Sec. 3.1: "only process the visible tokens following MAE").
#   bash tools/dist_train.sh configs/glid/glid-masktoken_swin-b_16xb128-coslr-300e_in1k-192px.py 16  # noqa: E501
_base_ = './glid_swin-b_16xb128-coslr-300e_in1k-192px.py'

model = dict(backbone=dict(mask_mode='mask_token'))
