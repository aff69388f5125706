# CamVid, 11 classes (SegNet split): 367 train / 101 val frames of 480x360.
# Layout: camvid/{images,labels}/{train,val}/*.{jpg,png}; labels 0..10 and
# 255 = void (ignored by the loss and by IoUMetric). Stock mmseg transforms,
# plus glid_mm's CheckSegLabels right after the labels load: an id outside
# 0..10 / 255 (e.g. the original CamVid void id 11) fails naming the file.
# Needs `custom_imports = dict(imports=['glid_mm'])` in the final config for
# CamVidDataset and CheckSegLabels.
dataset_type = 'CamVidDataset'
data_root = '{{$GLID_MM_DATA:../shared/data}}/camvid/'
crop_size = (360, 480)  # (h, w): the full frame; mmseg crop_size is (h, w)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=11, ignore_index=255),
    dict(
        type='RandomResize',
        scale=(480, 360),  # (w, h)
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(480, 360), keep_ratio=True),
    # annotations after Resize: the metric compares at the original size
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=11, ignore_index=255),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='labels/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
