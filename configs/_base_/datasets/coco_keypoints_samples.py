# COCO person keypoints samples: 4 COCO val2017 images with 14 person
# annotations, 12 of them with keypoints (17 COCO keypoints); the top-down
# dataset keeps those 12 (mmpose drops instances without keypoints).
# Layout: pose/coco/test_coco.json with the images in the same folder;
# pose/coco/test_coco_det_AP_H_56.json holds person detections for a
# detection-box evaluation (pass it as val_dataloader.dataset.bbox_file).
# Only 4 images: train, val and test all use them (a pipeline and metric
# check, not a benchmark). Validation crops the ground-truth boxes.
#
# The dataset section of mmpose's stock top-down heatmap config
# (mmpose::body_2d_keypoint/topdown_heatmap/coco/
# td-hm_res50_8xb64-210e_coco-256x192.py: mmpose keeps no dataset-only base),
# with the bundled root and files and the same 192x256 (w, h) input. mmpose's
# CocoDataset takes its keypoint names, flip pairs and sigmas from
# mmpose::_base_/datasets/coco.py.
dataset_type = 'CocoDataset'
data_mode = 'topdown'
data_root = '{{$GLID_MM_DATA:../shared/data}}/pose/coco/'
ann_file = 'test_coco.json'

# codec settings: MSRA heatmaps at 1/4 of the input size
codec = dict(
    type='MSRAHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file=ann_file,
        data_prefix=dict(img=''),
        pipeline=train_pipeline,
    ))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file=ann_file,  # the training images: see the note above
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline=val_pipeline,
    ))
test_dataloader = val_dataloader

# COCO keypoint OKS AP (xtcocotools COCOeval) against the same json
val_evaluator = dict(type='CocoMetric', ann_file=data_root + ann_file)
test_evaluator = val_evaluator
