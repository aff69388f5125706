# LiT decoder, tiny CPU set-up (minutes) on four text tasks DERIVED from the
# real annotations of the bundled data. There is no caption / VQA ground
# truth in ../shared/data, so the targets are computed from labels:
#   hymenoptera      'ants' / 'bees'                   (class name)
#   coco_categories  'dog, person, surfboard'          (sorted COCO classes
#                                                       present, COCO128)
#   coco_persons     '3'                               (non-crowd persons)
#   camvid_classes   'sky, building, road, car'        (CamVid classes present)
# Frozen encoder (LiT decoder, Sec. 4): the first three stages of a ResNet-18
# whose 4x4 stage-3 map (64 px input) is flattened to 16 image tokens. Give
# it pretrained weights with
#   --cfg-options model.backbone.init_cfg.type=Pretrained \
#                 model.backbone.init_cfg.checkpoint=<resnet18 checkpoint>
# (without them the frozen encoder is random and the decoder mostly learns
# label priors). Decoder: 2 layers, 128 wide (App. D: 1-2 layers work well).
# Paper defaults kept: lr 1e-3, decoupled wd 1e-4, dropout 0.1, label
# smoothing 0.1, inception crop with 50% minimum area, flips for the
# classification task only (Sec. 4.2, App. C); image size and epochs are cut.
_base_ = ['../_base_/runtimes/mmpretrain.py']
default_scope = 'mmpretrain'

data_root = '{{$GLID_MM_DATA:../shared/data}}/'
img_size = 64

model = dict(
    type='LiTDecoder',
    data_preprocessor=dict(
        type='MultiModalDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, )),
    decoder=dict(
        type='LiTTextDecoder', memory_dims=256, arch='tiny', drop_rate=0.1),
    tokenizer=dict(type='LiTBPETokenizer', vocab_size=384),
    encoder_mode='frozen',
    conditioning='task',
    max_length=64,
    label_smoothing=0.1,
    decode_cfg=dict(default=dict(strategy='greedy')))

# Sec. 4.2: inception crop (min area 50%); flip only for classification
crop = dict(
    type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0))
train_pipeline = [
    dict(type='LoadImageFromFile'), crop,
    dict(type='PackInputs')
]
train_flip_pipeline = [
    dict(type='LoadImageFromFile'), crop,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs')
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    # Sec. 5.3: 'concat_images' (default), 'equal', 'concat_pairs',
    # 'concat_unique_images'; add batch_sampler=dict(type=
    # 'LiTTaskBatchSampler') to alternate tasks across batches
    sampler=dict(type='LiTTaskMixSampler', strategy='concat_images'),
    collate_fn=dict(type='default_collate'),
    # the four tasks: name -> category, target, dataset
    dataset=dict(
        type='LiTMultiTaskDataset',
        tasks=dict(
            hymenoptera=dict(
                category='cls',
                target='class_name',
                dataset=dict(
                    type='CustomDataset',
                    data_root=data_root + 'hymenoptera',
                    data_prefix='train',
                    pipeline=train_flip_pipeline)),
            coco_categories=dict(
                category='tags',
                target='text',
                dataset=dict(
                    type='LiTCocoTextDataset',
                    data_root=data_root + 'coco128',
                    target='categories',
                    split='train',
                    pipeline=train_pipeline)),
            coco_persons=dict(
                category='count',
                target='text',
                dataset=dict(
                    type='LiTCocoTextDataset',
                    data_root=data_root + 'coco128',
                    target='person_count',
                    split='train',
                    pipeline=train_pipeline)),
            camvid_classes=dict(
                category='tags',
                target='text',
                dataset=dict(
                    type='LiTCamVidTextDataset',
                    data_root=data_root + 'camvid',
                    split='train',
                    pipeline=train_pipeline)))))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='LiTMultiTaskDataset',
        tasks=dict(
            hymenoptera=dict(
                category='cls',
                target='class_name',
                dataset=dict(
                    type='CustomDataset',
                    data_root=data_root + 'hymenoptera',
                    data_prefix='val',
                    pipeline=test_pipeline)),
            coco_categories=dict(
                category='tags',
                target='text',
                dataset=dict(
                    type='LiTCocoTextDataset',
                    data_root=data_root + 'coco128',
                    target='categories',
                    split='val',
                    pipeline=test_pipeline)),
            coco_persons=dict(
                category='count',
                target='text',
                dataset=dict(
                    type='LiTCocoTextDataset',
                    data_root=data_root + 'coco128',
                    target='person_count',
                    split='val',
                    pipeline=test_pipeline)),
            camvid_classes=dict(
                category='tags',
                target='text',
                dataset=dict(
                    type='LiTCamVidTextDataset',
                    data_root=data_root + 'camvid',
                    split='val',
                    pipeline=test_pipeline)))))
val_evaluator = dict(type='LiTTextMetric')
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# big_vision's wd is decoupled from the learning rate (update -= wd * param,
# scaled by the schedule only); torch's AdamW multiplies it by lr, so
# weight_decay = 1e-4 / lr(1e-3) = 0.1 gives the paper's decoupled 1e-4.
# Like big_vision (wd on kernels only) biases, norms and embeddings get none.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.1),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        custom_keys={
            'decoder.token_embed': dict(decay_mult=0.),
            'decoder.pos_embed': dict(decay_mult=0.)
        }))
# warm-up then cosine (the paper does not give its schedule)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR', by_epoch=True, begin=1, end=10, eta_min=1e-5)
]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()

custom_hooks = [
    dict(type='LiTTokenizerHook'),
    dict(type='FiniteLossHook'),  # as configs/_base_/runtimes/
    dict(type='AtomicCheckpointHook'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1))
# tiny run: batch 16 on one CPU/GPU; lr is not rescaled for other batch sizes
auto_scale_lr = dict(base_batch_size=16, enable=False)
