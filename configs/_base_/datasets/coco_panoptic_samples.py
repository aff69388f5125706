# COCO panoptic samples: 2 COCO val2017 images with their panoptic labels
# (133 categories: 80 things with isthing=1, then 53 stuff with isthing=0).
# Layout: coco_panoptic/panoptic_examples.json (images, categories and one
# `segments_info` list per image), coco_panoptic/panoptic_examples/*.png
# (segment id = R + 256 * G + 256**2 * B) and coco_panoptic/input_images/.
# Only 2 images: train, val and test all use them (a pipeline and metric
# check, not a benchmark).
#
# Stock mmdet dataset settings (mmdet::_base_/datasets/coco_panoptic.py) with
# the bundled root and files; the input is resized to fit 640x480 instead of
# the stock 1333x800. Category ids are mapped to mmdet's 133 class names by
# name (CocoPanopticDataset.cat2label). LoadPanopticAnnotations and
# CocoPanopticMetric need the `panopticapi` package.
_base_ = 'mmdet::_base_/datasets/coco_panoptic.py'

data_root = '{{$GLID_MM_DATA:../shared/data}}/coco_panoptic/'
ann_file = 'panoptic_examples.json'
seg_prefix = 'panoptic_examples/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=dict(img='input_images/', seg=seg_prefix),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=dict(img='input_images/', seg=seg_prefix),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    ann_file=data_root + ann_file, seg_prefix=data_root + seg_prefix)
test_evaluator = val_evaluator
