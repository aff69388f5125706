# M3I Pre-training, ViT-B/16 on ImageNet-1k, 1600 epochs: the paper's
# system-level comparison (Sec. 4.3, Table 4). Same recipe as the 400-epoch
# ablation config (SiameseIM's hyper-parameters, see there); SiameseIM's
# 1600-epoch run keeps 40 warm-up epochs, then cosine to 0.
_base_ = ['./m3i_vit-base-p16_64xb64-amp-coslr-400e_in1k.py']

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=40,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=1560,
        by_epoch=True,
        begin=40,
        end=1600,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1600)
