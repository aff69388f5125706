# GPPF Table 1 row "Single" for COCO detection / instance segmentation: the
# det task recipe of ../tasks/mask-rcnn_lego-r50-n2_8xb8-lsj-4conv1fc_coco-
# 1024.py (Mask R-CNN, LSJ 1024, 4-conv heads, batch 8 per GPU, from
# scratch) with a plain ResNet-50 instead of the lego backbone, and SyncBN
# throughout (a single task: every process runs every layer).
#   bash tools/dist_train.sh configs/gppf/single/mask-rcnn_r50_8xb8-lsj-4conv1fc_coco-1024.py 8  # noqa: E501
_base_ = '../tasks/mask-rcnn_lego-r50-n2_8xb8-lsj-4conv1fc_coco-1024.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        with_cp=True,
        init_cfg=None),
    roi_head=dict(
        bbox_head=dict(norm_cfg=norm_cfg), mask_head=dict(norm_cfg=norm_cfg)))
