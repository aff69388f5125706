# GLID fine-tuning schedule for the ADE20K segmentation tasks (semantic,
# instance, panoptic), supp. Table 7 and B.2: AdamW lr 1e-4, backbone lr
# 1e-5, weight decay 0.05, betas (0.9, 0.999), 160k iterations, poly decay.
# Toolbox-neutral (mmengine optimizer wrapper, schedulers and loops), so the
# mmseg and mmdet configs share it. Written for a Swin encoder with
# `backbone_depths` blocks per stage (Swin-B and Swin-L: 2, 2, 18, 2).
backbone_depths = [2, 2, 18, 2]
max_iters = 160000

# backbone lr 1e-5 = 1e-4 x 0.1 (supp. Table 7). mmengine applies only the
# longest custom key matching a parameter name, and norm_decay_mult only to
# parameters no key matches, so the backbone's norms and position tables are
# listed with both their lr and decay multipliers (as mmseg's Mask2Former
# Swin configs do). No weight decay on norms, position tables, the [CLS]
# token, the query embeddings e_i and the level embeddings.
backbone_no_decay = dict(lr_mult=0.1, decay_mult=0.0)
no_decay = dict(lr_mult=1.0, decay_mult=0.0)
custom_keys = {
    'backbone': dict(lr_mult=0.1, decay_mult=1.0),
    'backbone.patch_embed.norm': backbone_no_decay,
    'backbone.norm': backbone_no_decay,
    'relative_position_bias_table': backbone_no_decay,
    'cls_token': no_decay,
    'query_embed': no_decay,
    'level_embed': no_decay,
}
custom_keys.update({
    f'backbone.stages.{stage}.blocks.{block}.norm':
    backbone_no_decay
    for stage, depth in enumerate(backbone_depths)
    for block in range(depth)
})
custom_keys.update({
    f'backbone.stages.{stage}.downsample.norm':
    backbone_no_decay
    for stage in range(len(backbone_depths) - 1)
})
# Gradient clipping at 0.01 is Mask2Former's (GLID follows Mask2Former for
# these tasks); supp. Table 7 does not list clipping.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys=custom_keys, norm_decay_mult=0.0))
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
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# total batch 16 = 8 GPUs x 2 (supp. Table 7); scale the lr linearly for
# another total with --auto-scale-lr
auto_scale_lr = dict(enable=False, base_batch_size=16)
