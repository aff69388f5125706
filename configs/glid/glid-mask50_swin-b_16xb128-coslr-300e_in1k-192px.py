# Table 7 ablation: random masking with ratio 0.5 (default: random, 0.75), on
# the 300-epoch schedule.
_base_ = './glid_swin-b_16xb128-coslr-300e_in1k-192px.py'

train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(
            type='RandomResizedCrop',
            scale=192,
            crop_ratio_range=(0.2, 1.0),
            backend='pillow',
            interpolation='bicubic'),
        dict(type='RandomFlip', prob=0.5),
        dict(
            type='GLIDMaskGenerator',
            mask_patch_size=32,
            mask_ratio=0.5,
            strategy='random'),
        dict(type='PackInputs')
    ]))
