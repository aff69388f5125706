# GLID multi-task segmentation fine-tuning (Sec. 4 "Multitask fine-tuning",
# Sec. 5.3, Table 3) at smoke scale on the 2 bundled COCO panoptic samples
# (train = val, a pipeline and metric check): the nano panoptic config with
# one shared encoder / BiFPN / decoder / 200 queries and one linear head per
# task; batches of 3 hold the three tasks evenly (task_assignment='split').
# One validation pass reports PQ (CocoPanopticMetric), instance mask AP on
# the thing classes (ThingsCocoMetric over panopticapi's detection-format
# json of the same images) and mIoU over the 133 classes
# (DetSemSegIoUMetric = mmseg's IoUMetric). Choose the task combination of
# Table 3 with --cfg-options "model.tasks=['semantic','panoptic']".
_base_ = './glid-panseg_swin-nano_1xb2-500i_coco-panoptic-samples-320x240.py'

model = dict(
    type='GLIDMultiTaskMaskFormer',
    tasks=('semantic', 'instance', 'panoptic'),
    task_assignment='split',
    test_cfg=dict(panoptic_on=True, instance_on=True))

train_dataloader = dict(batch_size=3)  # one sample per task per batch
data_root = '{{$GLID_MM_DATA:../shared/data}}/coco_panoptic/'
val_evaluator = [
    dict(
        type='CocoPanopticMetric',
        ann_file=data_root + 'panoptic_examples.json',
        seg_prefix=data_root + 'panoptic_examples/'),
    dict(
        type='ThingsCocoMetric',
        ann_file=data_root + 'panoptic_coco_detection_format.json',
        metric='segm'),
    dict(type='DetSemSegIoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
