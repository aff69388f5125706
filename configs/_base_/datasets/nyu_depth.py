# NYU-Depth-v2 depth estimation with mmseg's own NYUDataset, transforms and
# DepthMetric (mmseg::_base_/datasets/nyu.py), pointed at the bundled layout
# depth/nyu/{images/*.jpg, depth_mm/*.png}: one real frame of 160x120, the
# same frame for train and val (a smoke/overfit set). Depth pngs are uint16
# millimetres, 0 = no measurement; LoadDepthAnnotation(depth_rescale_factor=
# 1e-3) gives metres. Invalid pixels (0 m) are dropped by DepthMetric
# (gt > min_depth_eval) and by mmseg's SiLogLoss (target > eps).
_base_ = 'mmseg::_base_/datasets/nyu.py'

data_root = '{{$GLID_MM_DATA:../shared/data}}/depth/nyu/'
data_prefix = dict(img_path='images', depth_map_path='depth_mm')
meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape',
             'pad_shape', 'scale_factor', 'flip', 'flip_direction',
             'category_id')
# the stock pipeline without its Albu colour jitter (albumentations is not a
# dependency of glid_mm); RandomCrop keeps the whole frame when it is smaller.
# glid_mm's CheckDepthMap goes BEFORE LoadDepthAnnotation (which turns the
# file into float32 metres): a depth png that is not uint16, has several
# channels, another size than its image, or does not decode fails naming
# the file (needs `custom_imports = dict(imports=['glid_mm'])` in the final
# config; not here: two bases defining it is an error in mmengine).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CheckDepthMap', dtype='uint16'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),  # mm -> m
    dict(type='RandomDepthMix', prob=0.25),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=(480, 480)),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2000, 480), keep_ratio=True),
    # after Resize: the metric compares with the depth at the original size
    dict(type='CheckDepthMap', dtype='uint16'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        data_root=data_root, data_prefix=data_prefix, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        data_root=data_root, data_prefix=data_prefix, pipeline=test_pipeline))
test_dataloader = val_dataloader

# DepthMetric keeps min_depth_eval < gt < max_depth_eval, so the 0 (= no
# measurement) pixels never count; NYU's Kinect range ends at 10 m. The
# stock 'nyu_crop' (Eigen crop [45:471, 41:601]) is defined on 640x480
# frames and would cut the bundled 160x120 frame, so it is off here.
# Do not set `depth_metrics=[...]`: mmseg 1.2.2's DepthMetric raises
# TypeError on any list there (isinstance with a list); it reports all 9.
val_evaluator = dict(
    type='DepthMetric',
    min_depth_eval=0.001,
    max_depth_eval=10.0,
    crop_type=None)
test_evaluator = val_evaluator
