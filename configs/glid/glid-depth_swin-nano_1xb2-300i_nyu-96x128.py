# The Redwood smoke config on the one bundled NYU-Depth-v2 frame
# (../_base_/datasets/nyu_depth.py, 160x120, Kinect depth up to 10 m):
# same model, pipeline and schedule, only the data root changes.
_base_ = './glid-depth_swin-nano_1xb2-300i_redwood-96x128.py'

data_root = '{{$GLID_MM_DATA:../shared/data}}/depth/nyu/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
