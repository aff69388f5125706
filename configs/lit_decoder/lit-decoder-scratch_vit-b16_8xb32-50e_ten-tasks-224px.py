# Sec. 5.7 / App. F "From-scratch": the ViT-B/16 encoder starts from random
# weights and trains at the full learning rate together with the decoder
# (a Pretrained backbone init_cfg is rejected in this mode).
_base_ = ['./lit-decoder_vit-b16_8xb32-50e_ten-tasks-224px.py']
model = dict(encoder_mode='scratch')
