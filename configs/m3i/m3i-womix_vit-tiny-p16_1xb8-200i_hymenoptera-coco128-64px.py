# Tiny "w/o mix" variant (Table 3) of the M3I smoke config, for same-budget
# comparisons with it: no mixing, 50% of the tokens dropped by MAEViT, the
# inter-view dense target and the category target (the paper's footnote:
# w/o mix = inter-view SSP + image classification).
_base_ = ['./m3i_vit-tiny-p16_1xb8-200i_hymenoptera-coco128-64px.py']

model = dict(
    backbone=dict(mask_ratio=0.5),
    mixer=None,
    loss_weights=dict(_delete_=True, inter=1.0, cls=1.0))
