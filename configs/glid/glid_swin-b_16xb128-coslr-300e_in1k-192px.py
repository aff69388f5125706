# The 300-epoch GLID Swin-B pre-training of Table 6 and the base of the
# masking ablations of Table 7 ("We pre-train for 300 epochs").
_base_ = './glid_swin-b_16xb128-coslr-600e_in1k-192px.py'

max_epochs = 300
warmup_epochs = 40
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
