# GPPF Table 1 row "Single" for ADE20K semantic segmentation: the seg task
# recipe of ../tasks/upernet_lego-r50-n2_8xb8-160k_ade20k-512x512.py
# (UperNet + auxiliary FCN head, 512x512, batch 8 per GPU) with a plain
# ResNet-50 (mmseg's, the lego backbone's architecture: no deep stem)
# instead of the lego backbone, and SyncBN throughout.
#   bash tools/dist_train.sh configs/gppf/single/upernet_r50_8xb8-160k_ade20k-512x512.py 8  # noqa: E501
_base_ = '../tasks/upernet_lego-r50-n2_8xb8-160k_ade20k-512x512.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        with_cp=True),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
