"""GLIDEncoderDecoder with GLIDMaskSegHead on real CamVid (tiny config).

Time budget: about 15 s on an idle CPU core (20 training steps at 64x80, a
2-iteration runner with IoUMetric on 2 val frames).
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.registry import build_model

CONFIG = 'configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'
PRETRAIN = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'


@pytest.fixture
def cfg(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = osp.join(data_root, 'camvid')
    init_default_scope('mmseg')
    return cfg


def _small(cfg):
    """The tiny config on 80x60 frames (64x80 padded): CPU-test size."""
    cfg.val_dataloader.dataset.pipeline[1].scale = (80, 60)
    cfg.model.data_preprocessor.size = (64, 80)
    return cfg


def _camvid_batch(cfg, index=0):
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    return pseudo_collate([dataset[index]])


def test_extract_feat_runs_the_decoder(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    x = model.extract_feat(torch.randn(1, 3, 128, 160))
    assert isinstance(x, GLIDDecoded)
    assert [f.shape[-2:] for f in x.feats] == [(32, 40), (16, 20), (8, 10),
                                               (4, 5)]
    assert x.query_states.shape == (3, 1, 100, 64)  # [L, B, M, C]
    assert model.decoder.queries.num_queries == \
        model.decode_head.num_queries == 100


def test_loss_falls_on_one_camvid_frame(cfg):
    """20 AdamW steps of the tiny config's optimiser on one real frame."""
    torch.manual_seed(0)
    cfg = _small(cfg)
    model = build_model(cfg.model)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = _camvid_batch(cfg)
    model.train()
    losses = [
        model.train_step(batch, optim_wrapper)['loss'].item()
        for _ in range(20)
    ]
    assert all(map(lambda v: v == v, losses))  # finite, not NaN
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    # seed 0: 41.6 -> 36.3 (loss summed over 3 blocks x cls / mask / dice)
    assert last < 0.93 * first, losses


def test_every_parameter_gets_a_gradient(cfg):
    torch.manual_seed(0)
    cfg = _small(cfg)
    cfg.model.backbone.drop_path_rate = 0.0  # no branch dropped at random
    cfg.model.decoder.drop_path_rate = 0.0
    cfg.model.auxiliary_head = dict(  # receives the neck's feats
        type='FCNHead',
        in_channels=32,
        in_index=1,
        channels=16,
        num_convs=1,
        num_classes=11,
        norm_cfg=dict(type='BN'))
    model = build_model(cfg.model)
    data = model.data_preprocessor(_camvid_batch(cfg), training=True)
    losses = model(**data, mode='loss')
    assert 'aux.loss_ce' in losses and 'decode.d1.loss_dice' in losses
    loss, _ = model.parse_losses(losses)
    loss.backward()
    dead = [
        n for n, p in model.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert dead == []


def test_pretraining_checkpoint_leaves_only_the_head_new(cfg, project_root):
    """Same layout as GLID pre-training: only the linear head (and the
    zero-initialised e_i of eq. 3) are missing from the checkpoint."""
    pre_cfg = Config.fromfile(osp.join(project_root, PRETRAIN))
    init_default_scope('mmpretrain')
    pretrained = build_model(pre_cfg.model).state_dict()
    init_default_scope('mmseg')
    model = build_model(cfg.model)
    result = model.load_state_dict(pretrained, strict=False)
    assert sorted(result.missing_keys) == [
        'decode_head.predictor.fc.bias', 'decode_head.predictor.fc.weight',
        'decoder.queries.query_embed'
    ]
    # pre-training only: the [M] query token, the pixel head and the
    # masked-position embeddings of the visible-token encoder's pyramid
    assert sorted(result.unexpected_keys) == [
        'decoder.queries.mask_token', 'head.predictor.bias',
        'head.predictor.weight'
    ] + [f'pyramid_mask_tokens.{i}' for i in range(4)]
    for key in ('decoder.queries.cls_token', 'decoder.layers.2.ffn.layers.1'
                '.weight', 'neck.blocks.0.td_fuse.0.weight',
                'backbone.stages.3.blocks.0.attn.w_msa.'
                'relative_position_bias_table'):
        assert torch.equal(model.state_dict()[key], pretrained[key]), key


def test_trains_and_evaluates_miou_with_the_runner(cfg, tmp_path):
    from mmengine.runner import Runner
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 100  # evaluated below
    cfg.param_scheduler[0].end = 2
    cfg.train_dataloader.batch_size = 1
    cfg.default_hooks.checkpoint.interval = 100
    cfg.default_hooks.logger.interval = 1
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.val_dataloader.dataset.indices = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    # a pipeline check (2 iterations): the metric values are checked on
    # ground-truth outputs in test_miou_of_ground_truth_predictions
    assert set(metrics) == {'aAcc', 'mIoU', 'mAcc'}


def test_needs_a_query_head(cfg):
    cfg.model.decode_head = dict(
        type='FCNHead', in_channels=32, channels=16, num_classes=11)
    with pytest.raises(TypeError, match='decode_head'):
        build_model(cfg.model)


@pytest.mark.parametrize('shuffle', [False, True])
def test_miou_of_ground_truth_predictions(cfg, shuffle):
    """mmseg's post-processing (crop the padding, resize to the original
    size) and the config's IoUMetric on head outputs that encode the
    ground truth of two real frames: high mIoU, low when every class is
    wrong (what a broken model gives). Not 100: the maps pass through the
    80x60 input size."""
    import torch.nn.functional as F
    from mmengine.evaluator import Evaluator
    from mmseg.registry import DATASETS
    cfg = _small(cfg)
    model = build_model(cfg.model)
    model.eval()
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    data = model.data_preprocessor(batch, training=False)
    K = model.decode_head.num_classes
    shape = data['inputs'].shape[-2:]

    def ground_truth_logits(x, metas, test_cfg):
        logits = torch.full((len(metas), K) + tuple(shape), -20.)
        for b, sample in enumerate(data['data_samples']):
            gt = sample.gt_sem_seg.data.float()[None]  # [1, 1, H, W]
            h, w = sample.img_shape
            gt = F.interpolate(gt, (h, w), mode='nearest')[0, 0].long()
            gt[gt >= K] = 0  # ignored pixels: any class
            if shuffle:
                gt = (gt + 3) % K
            logits[b, :, :h, :w].scatter_(0, gt[None], 20.)
        return logits

    model.decode_head.predict = ground_truth_logits
    with torch.no_grad():
        outputs = model.predict(data['inputs'], data['data_samples'])
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    evaluator.process(outputs, batch)
    miou = evaluator.evaluate(2)['mIoU']
    if shuffle:
        assert miou < 10, miou
    else:
        assert miou > 60, miou
