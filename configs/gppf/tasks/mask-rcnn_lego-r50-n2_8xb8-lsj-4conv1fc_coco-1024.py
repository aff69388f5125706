# GPPF detection / instance segmentation task at paper scale (Sec. 4.1,
# App. D.1): the "det" task of ../gppf_lego-r50-n2_56xsimt-500k_coco-
# ade20k-in21k.py; on its own, the lego backbone on one task (Table 1's
# "Single" is ../single/mask-rcnn_r50_8xb8-lsj-4conv1fc_coco-1024.py).
# Stock mmdet Mask R-CNN + FPN with large scale jitter at 1024 (mmdet's LSJ
# config), box and mask heads with four convs before the predictors
# (Shared4Conv1FCBBoxHead, as [29]), batch 8 per GPU (App. D.1), a
# LegoResNet-50 with N = 2 units and cross-task SyncBN, trained from scratch
# (App. D.1: ImageNet pre-training does not help detection here). Not
# included: Copy-Paste augmentation. Task heads use plain BN: under SIMT
# only the processes running this task run its heads.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_8xb8-amp-lsj-200e_coco.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
# the glid_mm runtime (configs/_base_/runtimes/) on a stock config
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='AtomicCheckpointHook'),
]

head_norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='LegoResNet',
        task_names=('det', ),
        depth=50,
        num_units=2,
        norm_cfg=dict(type='CrossTaskSyncBN'),
        with_cp=True),  # App. D.1: "Model Checkpoint is used"
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=head_norm_cfg),
        mask_head=dict(norm_cfg=head_norm_cfg)))
train_dataloader = dict(batch_size=8)
