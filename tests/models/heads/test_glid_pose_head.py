"""GLIDPoseHead (eq. 8) and GLIDTopdownPoseEstimator on COCO samples.

Time budget: about 30 s on an idle CPU core (tiny tensors, 6 training
steps of the nano model at 256x192, a 1-epoch runner with flip test and
CocoMetric on the 12 sample persons, model-only builds of the Swin-B/L
configs and the layer-decay optimiser).
"""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.heads import GLIDPoseHead
from glid_mm.registry import build_model

TINY = 'configs/glid/glid-pose_swin-nano_1xb4-60e_coco-samples-256x192.py'
BIG = ('configs/glid/glid-pose_swin-b_8xb64-210e_coco-256x192.py',
       'configs/glid/glid-pose_swin-l_8xb64-210e_coco-256x192.py')


def _head(**kwargs):
    init_default_scope('mmpose')
    cfg = dict(num_keypoints=3, in_channels=8, feat_channels=4)
    cfg.update(kwargs)
    return GLIDPoseHead(**cfg)


@pytest.fixture
def cfg(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, TINY))
    root = osp.join(data_root, 'pose', 'coco') + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = root
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.val_evaluator.ann_file = root + 'test_coco.json'
    cfg.test_evaluator = cfg.val_evaluator
    init_default_scope('mmpose')
    return cfg


def _samples(cfg, indices, train=True):
    from mmpose.registry import DATASETS
    loader = cfg.train_dataloader if train else cfg.val_dataloader
    dataset = DATASETS.build(loader.dataset)
    return pseudo_collate([dataset[i] for i in indices])


def test_heatmap_is_the_dot_product_eq8():
    torch.manual_seed(0)
    head = _head()
    qs = torch.randn(2, 2, 3, 8)  # [L, B, K, C_q]
    feat = torch.randn(2, 4, 5, 6)  # [B, C_f, h, w]
    hm = head(GLIDDecoded((feat, ), qs))
    assert hm.shape == (2, 3, 5, 6)
    fk = qs[-1] @ head.fc.weight.T + head.fc.bias  # last block only
    for b in range(2):
        for k in range(3):
            expected = (fk[b, k][:, None, None] * feat[b]).sum(0)
            assert torch.allclose(hm[b, k], expected, atol=1e-5)
    assert head.heatmaps(qs, feat).shape == (2, 2, 3, 5, 6)


def test_losses_smooth_l1_default_mse_option_and_invisible_keypoints():
    torch.manual_seed(0)
    pred = torch.randn(2, 3, 5, 6) * 2
    gt = torch.rand(2, 3, 5, 6)
    w = torch.tensor([[1., 0., 1.], [1., 1., 0.]])
    head = _head()
    expected = F.smooth_l1_loss(pred * w[..., None, None],
                                gt * w[..., None, None])
    assert torch.allclose(head.loss_module(pred, gt, w), expected)
    pred2 = pred.clone()
    pred2[0, 1] += 5.0  # an invisible keypoint: no effect
    assert torch.allclose(head.loss_module(pred2, gt, w), expected)
    mse = _head(loss=dict(type='KeypointMSELoss', use_target_weight=True))
    assert torch.allclose(
        mse.loss_module(pred, gt, w),
        (F.mse_loss(pred, gt, reduction='none') * w[..., None, None]).mean())


def test_bad_arguments_raise(cfg):
    with pytest.raises(ValueError, match='num_keypoints'):
        _head(num_keypoints=0)
    with pytest.raises(ValueError, match='feat_channels'):
        _head(feat_channels=-4)
    with pytest.raises(ValueError, match='feat_level'):
        _head(feat_level=-1)
    with pytest.raises(TypeError, match='loss'):
        _head(loss='SmoothL1Loss')
    head = _head()
    with pytest.raises(ValueError, match='num_keypoints, in_channels'):
        head.heatmaps(torch.zeros(1, 5, 8), torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match='feat_channels'):
        head.heatmaps(torch.zeros(1, 3, 8), torch.zeros(1, 6, 2, 2))
    with pytest.raises(TypeError, match='GLIDDecoded'):
        head((torch.zeros(1, 4, 2, 2), ))
    with pytest.raises(ValueError, match='feat_level'):
        _head(feat_level=2)(
            GLIDDecoded((torch.zeros(1, 4, 2, 2), ), torch.zeros(1, 1, 3, 8)))
    bad = copy.deepcopy(cfg.model)
    bad.decoder.num_queries = 20  # the head's 17 is the only source
    with pytest.raises(ValueError, match='num_queries'):
        build_model(bad)
    # a codec whose heatmaps are not 1/4 of the input
    model = build_model(cfg.model)
    data = _samples(cfg, [0])
    from mmengine.structures import PixelData
    data['data_samples'][0].gt_fields = PixelData(
        heatmaps=torch.zeros(17, 32, 24))
    data = model.data_preprocessor(data, training=True)
    with pytest.raises(ValueError, match='heatmap_size'):
        model.loss(**data)


@pytest.mark.slow
def test_every_parameter_gets_a_gradient(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    data = model.data_preprocessor(_samples(cfg, [0, 1]), training=True)
    feats = model.extract_feat(data['inputs'])
    assert feats.query_states.shape == (3, 2, 17, 64)  # [L, B, K, C]
    assert model.head(feats).shape == (2, 17, 64, 48)  # 1/4 of 256x192
    losses = model.loss(**data)
    losses['loss_kpt'].backward()
    missing = [
        n for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing, missing


@pytest.mark.slow
def test_flip_test_averages_the_flipped_heatmaps(cfg):
    from mmpose.models.utils.tta import flip_heatmaps
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    data = model.data_preprocessor(
        _samples(cfg, [0, 1], train=False), training=False)
    x = data['inputs']
    test_cfg = dict(model.test_cfg, output_heatmaps=True)
    with torch.no_grad():
        feats = [model.extract_feat(x), model.extract_feat(x.flip(-1))]
        _, fields = model.head.predict(feats, data['data_samples'], test_cfg)
        plain = model.head(feats[0])
        flipped = flip_heatmaps(
            model.head(feats[1]),
            flip_mode='heatmap',
            flip_indices=data['data_samples'][0].metainfo['flip_indices'],
            shift_heatmap=True)
        results = model.predict(x, data['data_samples'])
    got = torch.stack([f.heatmaps for f in fields])
    assert torch.allclose(got, (plain + flipped) / 2, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-3)
    assert results[0].pred_instances.keypoints.shape == (1, 17, 2)


@pytest.mark.slow
def test_loss_falls_on_coco_samples_and_coco_metric_runs(cfg, tmp_path):
    """6 AdamW steps of the tiny config's optimiser on 4 real person
    crops, then a 1-epoch runner validated (flip test) with CocoMetric."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    # fixed crops and targets: the validation pipeline plus the codec
    eval_cfg = copy.deepcopy(cfg)
    pipeline = eval_cfg.val_dataloader.dataset.pipeline
    pipeline.insert(-1, dict(type='GenerateTarget', encoder=cfg.codec))
    eval_cfg.val_dataloader.dataset.test_mode = False
    data = model.data_preprocessor(
        _samples(eval_cfg, [0, 1, 2, 3], train=False), training=True)
    values = []
    for _ in range(6):
        loss = model.loss(**data)['loss_kpt']
        optim.update_params(loss)
        values.append(loss.item())
    assert values[-1] < 0.5 * values[0], values

    from mmengine.runner import Runner
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = []
    cfg.train_dataloader.dataset.indices = 4  # 1 epoch = 1 iteration
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    # a pipeline check; AP values: test_coco_ap_of_ground_truth_heatmaps
    assert 'coco/AP' in metrics


@pytest.mark.parametrize('config', BIG)
def test_big_configs_build_head_size_and_layer_decay(project_root, config):
    """Swin-B / Swin-L COCO recipes, model only; the linear head's size next
    to supp. Table 3 (keypoint: 0.6 M); lr x0.8 per Swin block."""
    cfg = Config.fromfile(osp.join(project_root, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmpose')
    model = build_model(cfg.model)
    assert model.decoder.queries.num_queries == 17
    head = sum(p.numel() for p in model.head.parameters())
    assert head == 512 * 256 + 256 == 131328  # vs 0.6 M in supp. Table 3
    assert cfg.train_dataloader.batch_size * 8 == 512
    assert cfg.train_cfg.max_epochs == 210
    assert cfg.param_scheduler[1].milestones == [170, 200]
    assert cfg.model.backbone.drop_path_rate == 0.3
    assert cfg.model.test_cfg.flip_test
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = [g for g in optim.param_groups if 'param_name' in g]
    lrs = {g['param_name']: g['lr'] for g in groups}
    assert lrs['head.fc.weight'] == pytest.approx(5e-4)
    assert lrs['decoder.queries.query_embed'] == pytest.approx(5e-4)
    # Swin-B / L: 24 blocks + stem + subsequent = 26 depths
    assert lrs['backbone.patch_embed.projection.weight'] == pytest.approx(
        5e-4 * 0.8**25)
    w = {g['param_name']: g['weight_decay'] for g in groups}
    assert w['head.fc.weight'] == 0.1 and w['head.fc.bias'] == 0.0


@pytest.mark.parametrize('shuffle', [False, True])
def test_coco_ap_of_ground_truth_heatmaps(cfg, shuffle):
    """The estimator's decode (the config's codec, no flip) and mmpose's
    CocoMetric on the whole bundled val set, with the head returning the
    codec's encoding of the ground truth: AP near 1; with the keypoint
    channels rotated (every joint at another's place) AP near 0."""
    from mmengine.evaluator import Evaluator
    from mmpose.registry import DATASETS
    model = build_model(cfg.model)
    model.eval()
    model.test_cfg = dict(flip_test=False)
    eval_cfg = copy.deepcopy(cfg)
    pipeline = eval_cfg.val_dataloader.dataset.pipeline
    pipeline.insert(-1, dict(type='GenerateTarget', encoder=cfg.codec))
    eval_cfg.val_dataloader.dataset.test_mode = False
    dataset = DATASETS.build(eval_cfg.val_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    data = model.data_preprocessor(batch, training=False)
    gt = torch.stack([s.gt_fields.heatmaps for s in data['data_samples']])
    if shuffle:
        gt = gt.roll(1, dims=1)
    model.head.forward = lambda feats: gt
    with torch.no_grad():
        outputs = model.predict(data['inputs'], data['data_samples'])
    evaluator = Evaluator(copy.deepcopy(cfg.val_evaluator))
    evaluator.dataset_meta = dataset.metainfo
    evaluator.process(outputs, batch)
    ap = evaluator.evaluate(len(dataset))['coco/AP']
    if shuffle:
        assert ap < 0.1, ap
    else:
        assert ap > 0.8, ap
