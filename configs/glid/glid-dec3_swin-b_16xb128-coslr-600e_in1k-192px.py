# Table 5 ablation: a 3-block GLID decoder (default 6), pre-trained and
# fine-tuned with the same depth.
_base_ = './glid_swin-b_16xb128-coslr-600e_in1k-192px.py'

model = dict(decoder=dict(num_layers=3))
