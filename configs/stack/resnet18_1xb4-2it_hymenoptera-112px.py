# Smoke test of the mmpretrain stack on real hymenoptera (ants vs bees): a
# stock ResNet-18 trained from scratch for 2 iterations (batch 4, 112 px) on
# CPU, then validated with Accuracy (top-1) on 8 val images (4 ants, 4 bees).
# Smoke numbers, not results.
#
# Model = mmpretrain's resnet/resnet18_8xb32_in1k.py, which is exactly the
# composition of the stock bases below with the ImageNet dataset base; here
# the hymenoptera dataset base replaces it (mmengine refuses a key that two
# bases define, so the stock config itself cannot be combined with it).
_base_ = [
    'mmpretrain::_base_/models/resnet18.py',
    '../_base_/datasets/hymenoptera.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    '../_base_/runtimes/mmpretrain.py'
]

model = dict(head=dict(num_classes=2, topk=(1, )))

train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    # val is sorted by class: 70 ants (0..69), then 83 bees (70..152)
    dataset=dict(indices=[0, 1, 2, 3, 70, 71, 72, 73]))
test_dataloader = val_dataloader

# 2 iterations, validated at the end; lr of the stock schedule (total batch
# 256, lr 0.1) scaled linearly to batch 4: 0.1 * 4 / 256
optim_wrapper = dict(optimizer=dict(lr=0.0015625))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=False, milestones=[1000], gamma=0.1)
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=2)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
