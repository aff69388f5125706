# Smoke-scale schedule of the nano GLID fine-tuning configs (CPU minutes):
# the recipes' AdamW (betas (0.9, 0.999), weight decay 0.05, backbone lr x0.1
# as 1e-5 / 1e-4 in supp. Tables 6-7, no decay on norms, position tables,
# [CLS], e_i and level embeddings) with a 5x larger lr, 5e-4, for runs of
# hundreds of iterations; poly decay over 2,000 iterations, validation at
# the end, seed 0. Configs with another length override max_iters in
# param_scheduler / train_cfg (and their checkpoint interval).
max_iters = 2000
optim_wrapper = dict(
    type='OptimWrapper',
    # part multipliers and kind rules combine (mmengine's default applies
    # only the longest matching key): glid_mm's constructor
    constructor='PartwiseOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'relative_position_bias_table': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
randomness = dict(seed=0)
