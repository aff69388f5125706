# Sec. 5.7 / App. F "Finetune": the encoder is trained too, with a 0.1
# learning-rate multiplier. decay_mult=10 keeps its decoupled weight decay at
# the decoder's 1e-4: torch's AdamW scales decay by the (0.1x) group lr,
# whereas big_vision's decoupled decay ignores lr multipliers. Encoder biases
# and norms keep no decay (norm/bias_decay_mult of the base config still
# apply under the 'backbone' key with PartwiseOptimWrapperConstructor).
_base_ = ['./lit-decoder_vit-b16_8xb32-50e_ten-tasks-224px.py']
model = dict(encoder_mode='finetune')
optim_wrapper = dict(
    # part multipliers and kind rules combine (mmengine's default applies
    # only the longest matching key): glid_mm's constructor
    constructor='PartwiseOptimWrapperConstructor',
    paramwise_cfg=dict(
        custom_keys={'backbone': dict(lr_mult=0.1, decay_mult=10.)}))
