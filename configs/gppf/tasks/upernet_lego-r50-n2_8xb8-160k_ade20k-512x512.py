# GPPF semantic segmentation task at paper scale (Sec. 4.1, App. D.1): the
# "seg" task of ../gppf_lego-r50-n2_56xsimt-500k_coco-ade20k-in21k.py; on
# its own, the lego backbone on one task (Table 1's "Single" baseline is
# ../single/upernet_r50_8xb8-160k_ade20k-512x512.py). Stock mmseg UperNet
# with an auxiliary FCN head on res4 (App. D.1) on ADE20K 512x512, batch 8
# per GPU (App. D.1), a LegoResNet-50 with N = 2 units and cross-task
# SyncBN. Task heads use plain BN: under SIMT only the processes running
# this task run its heads. No ImageNet `pretrained` (the shared backbone is
# trained jointly; fine-tune from a GPPF checkpoint with load_from).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
# the glid_mm runtime (configs/_base_/runtimes/) on a stock config
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='AtomicCheckpointHook'),
]

head_norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='LegoResNet',
        task_names=('seg', ),
        depth=50,
        num_units=2,
        norm_cfg=dict(type='CrossTaskSyncBN'),
        with_cp=True),
    decode_head=dict(norm_cfg=head_norm_cfg),
    auxiliary_head=dict(norm_cfg=head_norm_cfg))
train_dataloader = dict(batch_size=8)
