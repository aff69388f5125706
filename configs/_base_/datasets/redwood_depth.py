# Redwood indoor RGB-D (Open3D test data): 5 real frames of 640x480 in the
# same images/ + depth_mm/ layout as nyu_depth.py (uint16 millimetres,
# 0 = invalid), read by mmseg's NYUDataset; all 5 frames serve as train and
# val (a smoke/overfit set). Redwood file names carry no NYU scene name, so
# every frame gets category_id -1 (read only by mmseg's DepthEstimator to
# pick a scene class embedding, for VPD). Pipelines, CheckDepthMap (uint16)
# included, and the metric come from nyu_depth.py.
_base_ = './nyu_depth.py'

data_root = '{{$GLID_MM_DATA:../shared/data}}/depth/redwood/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
