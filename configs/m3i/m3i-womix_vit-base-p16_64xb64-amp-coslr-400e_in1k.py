# "M3I Pre-training w/o mix" (Table 3): no mixing; one masked input view
# (MAEViT drops 60% of the tokens, ~SiameseIM's 118 / 196) predicts the
# inter-view dense target and the category. Per the paper's footnote, w/o
# mix "combines Inter-view SSP with Image Classification", so the intra-view
# group is off. Everything else as the 400-epoch M3I config.
_base_ = ['./m3i_vit-base-p16_64xb64-amp-coslr-400e_in1k.py']

model = dict(
    # MAEViT drops 60% of the tokens, ~ the 118 of 196 SiameseIM masks
    backbone=dict(mask_ratio=0.6),
    mixer=None,
    loss_weights=dict(_delete_=True, inter=1.0, cls=1.0))
