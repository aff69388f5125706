# GLID multi-task segmentation fine-tuning on ADE20K, Swin-B (GLID Sec. 4
# "Multitask fine-tuning", Sec. 5.3, Table 3): the panoptic recipe
# (glid-panseg_swin-b_8xb2-160k_ade20k-640x640.py: same optimiser, 160k
# iterations, batch 16, augmentation) with everything shared except one
# linear head per task; "the batch samples of different tasks are evenly
# included" (task_assignment='split'). Evaluated in one pass with PQ,
# instance mask AP on the 100 thing classes (mmdet's ADE20K instance json)
# and mIoU over the 150 panoptic classes. Table 3's rows are task
# combinations: --cfg-options "model.tasks=['semantic','panoptic']" etc.
# Note: the semantic task here uses the panoptic label set (100 things + 50
# stuff of mmdet's ADE20K panoptic json), not ADE20K-150's semantic labels.
_base_ = './glid-panseg_swin-b_8xb2-160k_ade20k-640x640.py'

model = dict(
    type='GLIDMultiTaskMaskFormer',
    tasks=('semantic', 'instance', 'panoptic'),
    task_assignment='split',
    test_cfg=dict(panoptic_on=True, instance_on=True))

data_root = 'data/ADEChallengeData2016/'  # mmdet's ADE20K layout
val_evaluator = [
    dict(
        type='CocoPanopticMetric',
        ann_file=data_root + 'ade20k_panoptic_val.json',
        seg_prefix=data_root + 'ade20k_panoptic_val/'),
    dict(
        type='ThingsCocoMetric',
        ann_file=data_root + 'ade20k_instance_val.json',
        metric='segm'),
    dict(type='DetSemSegIoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
