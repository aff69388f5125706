# GLID fine-tuning for ADE20K semantic segmentation, Swin-B (GLID Table 1 /
# Table 2 "Seg^sem"; Sec. 3.2 "Image segmentation", eq. 3-4; Sec. 4).
# Pre-trained encoder, BiFPN and query decoder are kept; 100 queries
# [CLS] + e_i (eq. 3); the only new layer is the linear mask-classification
# head (eq. 4), supervised on every decoder block with Mask2Former's
# matching and losses; Mask2Former's semantic inference.
# Supp. Table 7 (schedule in ../_base_/schedules/glid-seg_adamw-poly-160k.py):
# AdamW lr 1e-4, backbone lr 1e-5, weight decay 0.05, betas (0.9, 0.999),
# batch 16 (8 GPUs x 2), 160k iterations, poly decay; drop path 0.1 and
# decoder drop path 0.2 below; supp. B.2: 640x640 crops, scale jitter
# 0.5-2.0, horizontal flip, colour jitter (the pipeline of mmseg's
# ade20k_640x640 base).
# Load the GLID pre-training checkpoint (same model layout: backbone.*,
# neck.*, decoder.*):
#   python tools/train.py THIS_CONFIG --cfg-options load_from=CKPT
#   (CKPT: a GLID Swin pre-training checkpoint)
_base_ = [
    '../_base_/runtimes/mmseg.py', 'mmseg::_base_/datasets/ade20k_640x640.py',
    '../_base_/schedules/glid-seg_adamw-poly-160k.py',
    '../_base_/models/glid-semseg_swin-b.py'
]

crop_size = (640, 640)
num_classes = 150
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size),
    decode_head=dict(num_classes=num_classes))

train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=5000,
        save_best='mIoU'))
