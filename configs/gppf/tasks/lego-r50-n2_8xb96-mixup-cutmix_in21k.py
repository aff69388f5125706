# GPPF classification task at paper scale (Sec. 4.1, App. D.1): the "cls"
# task of ../gppf_lego-r50-n2_56xsimt-500k_coco-ade20k-in21k.py; on its own,
# a single-task baseline of the lego backbone. ImageNet-21K with mmpretrain's
# ImageClassifier (global average pooling + linear layer, Sec. 4.1), a
# LegoResNet-50 with N = 2 units and cross-task SyncBN, batch 96 per GPU and
# Mixup 0.8 / CutMix 1.0 / Random Erasing 0.25 / label smoothing 0.1 /
# RandAugment (App. D.1, Sec. 4.1).
_base_ = 'mmpretrain::resnet/resnet50_8xb128_coslr-90e_in21k.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)

# the stock in21k config has 21843 head classes but 21842 in its data
# preprocessor; Mixup / CutMix one-hot targets need them equal
num_classes = 21842
model = dict(
    backbone=dict(
        _delete_=True,
        type='LegoResNet',
        task_names=('cls', ),
        depth=50,
        num_units=2,
        out_indices=(3, ),
        norm_cfg=dict(type='CrossTaskSyncBN'),
        with_cp=True),
    head=dict(
        num_classes=num_classes,
        loss=dict(
            _delete_=True,
            type='LabelSmoothLoss',
            label_smooth_val=0.1,
            mode='original')),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))
data_preprocessor = dict(num_classes=num_classes)

bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=96, dataset=dict(pipeline=train_pipeline))
