# COCO128: the first 128 images of COCO train2017 (JPEG q85) with their 939
# instances (71 of the 80 COCO categories occur, 10 of them crowd RLE).
# Layout: coco128/annotations/instances.json + coco128/images/*.jpg.
#
# COCO128 has NO validation split: val/test evaluate on the same 128 images
# the model trains on, so its numbers are an overfit check, not a measure of
# generalisation.
#
# Boxes and instance masks (polygons; crowd regions as RLE).
#
# Stock mmdet dataset settings (mmdet::_base_/datasets/coco_instance.py)
# with the bundled root and files; the input is resized to fit 640x480 (the
# native COCO size) instead of the stock 1333x800. Category ids are mapped to
# mmdet's 80 COCO class names by name (CocoDataset.cat2label).
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

data_root = '{{$GLID_MM_DATA:../shared/data}}/coco128/'
ann_file = 'annotations/instances.json'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file=ann_file,  # the training images: see the note above
        data_prefix=dict(img='images/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# CocoMetric with metric=['bbox', 'segm'] (from the stock base)
val_evaluator = dict(ann_file=data_root + ann_file)
test_evaluator = val_evaluator
