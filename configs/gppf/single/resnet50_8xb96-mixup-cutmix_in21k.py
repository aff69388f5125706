# GPPF Table 1 row "Single" for ImageNet-21K classification: the cls task
# recipe of ../tasks/lego-r50-n2_8xb96-mixup-cutmix_in21k.py (ImageNet-21K-P
# fall11, 11,221 classes, batch 96 per GPU, Mixup / CutMix / RandAugment /
# Random Erasing / label smoothing) with mmpretrain's plain ResNet-50
# instead of the lego backbone, and SyncBN.
#   bash tools/dist_train.sh configs/gppf/single/resnet50_8xb96-mixup-cutmix_in21k.py 8  # noqa: E501
_base_ = '../tasks/lego-r50-n2_8xb96-mixup-cutmix_in21k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        with_cp=True))
