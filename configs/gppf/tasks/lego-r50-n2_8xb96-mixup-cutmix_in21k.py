# GPPF classification task at paper scale (Sec. 4.1, App. D.1): the "cls"
# task of ../gppf_lego-r50-n2_56xsimt-500k_coco-ade20k-in21k.py; on its own,
# the lego backbone on one task (Table 1's "Single" is
# ../single/resnet50_8xb96-mixup-cutmix_in21k.py). ImageNet-21K with
# mmpretrain's ImageClassifier (global average pooling + linear layer, Sec.
# 4.1), a LegoResNet-50 with N = 2 units and cross-task SyncBN, batch 96 per
# GPU and Mixup 0.8 / CutMix 1.0 / Random Erasing 0.25 / label smoothing 0.1 /
# RandAugment (App. D.1, Sec. 4.1).
_base_ = 'mmpretrain::resnet/resnet50_8xb128_coslr-90e_in21k.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
# the glid_mm runtime (configs/_base_/runtimes/) on a stock config
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='AtomicCheckpointHook'),
]

# GPPF Sec. 3.4 uses "the cleaned version of ImageNet21K [26, 69], which
# removes infrequent classes and resize the original image to 224": the
# processed ImageNet-21K-P of Ridnik et al. [69], release fall11
# (imagenet21k_resized: 11,221 classes, 11,797,632 train and 561,052 val
# images, 11M as the paper's Table 1 cardinality), not the full 21,841-class
# fall11 set of mmpretrain's stock config. Layout of the release:
# imagenet21k_resized/imagenet21k_{train,val}/<wnid>/*.JPEG; mmpretrain's
# ImageNet21k reads the class folders when no ann_file is given (list them
# once in meta/train.txt to skip the 11M-file scan). The winter21 release
# (10,450 classes) needs num_classes=10450.
num_classes = 11221
data_root = 'data/imagenet21k_resized/'

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
train_dataloader = dict(
    batch_size=96,
    dataset=dict(
        data_root=data_root,
        split='',
        data_prefix='imagenet21k_train',
        pipeline=train_pipeline))
