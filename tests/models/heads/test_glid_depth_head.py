"""GLIDDepthHead (eq. 5-7), SigLoss and GLIDDepthEstimator on Redwood.

Time budget: about 25 s on an idle CPU core (math on tiny tensors, 8
training steps of the nano model at 96x128, a 2-iteration runner with
DepthMetric on the 5 Redwood frames, model-only builds of the Swin-B/L
configs).
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.models.heads import GLIDDepthHead
from glid_mm.models.losses import SigLoss
from glid_mm.registry import build_model

TINY = 'configs/glid/glid-depth_swin-nano_1xb2-300i_redwood-96x128.py'
TINY_NYU = 'configs/glid/glid-depth_swin-nano_1xb2-300i_nyu-96x128.py'
BIG = ('configs/glid/glid-depth_swin-b_8xb2-38.4k_nyu-416x544.py',
       'configs/glid/glid-depth_swin-l_8xb2-38.4k_nyu-416x544.py')


def _head(**kwargs):
    init_default_scope('mmseg')
    cfg = dict(num_queries=3, in_channels=8, feat_channels=4)
    cfg.update(kwargs)
    return GLIDDepthHead(**cfg)


@pytest.fixture
def cfg(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, TINY))
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = osp.join(data_root, 'depth', 'redwood')
        loader.num_workers = 0
        loader.persistent_workers = False
    init_default_scope('mmseg')
    return cfg


def test_bin_centers_eq5_hand_example():
    head = _head(min_depth=1.0, max_depth=5.0)
    lengths = torch.tensor([[0.5, 0.25, 0.25]])
    # c_i = 1 + 4 * (l_i / 2 + sum_{j<i} l_j)
    expected = torch.tensor([[1 + 4 * 0.25, 1 + 4 * 0.625, 1 + 4 * 0.875]])
    centers = head.bin_centers(lengths)
    assert torch.allclose(centers, expected)
    # extreme lengths: centres stay inside [d_min, d_max], increasing
    lengths = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    c = head.bin_centers(lengths)
    assert torch.allclose(c, torch.tensor([[3.0, 5.0, 5.0], [1.0, 1.0, 3.0]]))
    c = head.bin_centers(torch.rand(4, 7).softmax(-1))
    assert (c > 1.0).all() and (c < 5.0).all()
    assert (c.diff(dim=-1) > 0).all()


def test_depth_is_center_weighted_sum_of_softmax_bins():
    torch.manual_seed(0)
    head = _head(min_depth=0.5, max_depth=8.0)
    qs = torch.randn(2, 2, 3, 8) * 3  # [L, B, M, C_q]
    feat = torch.randn(2, 4, 5, 6) * 3  # [B, C_f, h, w]
    out = head.forward_bins(qs, feat)
    assert out['depth'].shape == (2, 2, 1, 5, 6)
    W, b = head.fc.weight, head.fc.bias
    for layer in range(2):
        for i in range(2):
            y = qs[layer, i] @ W.T + b  # [M, 1 + C_f]
            lengths = y[:, 0].softmax(0)
            centers = 0.5 + 7.5 * (lengths.cumsum(0) - lengths / 2)
            logits = torch.einsum('mc,chw->mhw', y[:, 1:], feat[i])
            probs = logits.softmax(0)
            depth = (centers[:, None, None] * probs).sum(0)
            assert torch.allclose(out['centers'][layer, i], centers)
            assert torch.allclose(out['probs'][layer, i], probs, atol=1e-6)
            assert torch.allclose(out['depth'][layer, i, 0], depth, atol=1e-5)
    assert (out['depth'] > 0.5).all() and (out['depth'] < 8.0).all()


def test_sig_loss_formula_and_invalid_pixels():
    torch.manual_seed(0)
    gt = torch.rand(2, 1, 6, 7) * 5 + 0.5
    gt[0, 0, :2] = 0  # invalid: no measurement
    pred = torch.rand(2, 1, 6, 7) * 5 + 0.5
    loss = SigLoss(loss_weight=10.0)
    value = loss(pred, gt)
    valid = gt > 0
    g = pred[valid].log() - gt[valid].log()
    expected = 10 * torch.sqrt(g.var(unbiased=False) + 0.15 * g.mean()**2)
    assert torch.allclose(value, expected)
    # predictions at invalid pixels do not matter
    pred2 = pred.clone()
    pred2[0, 0, :2] = 123.0
    assert torch.allclose(loss(pred2, gt), value)
    pred.requires_grad_(True)
    loss(pred, gt).backward()
    assert (pred.grad[0, 0, :2] == 0).all() and pred.grad.abs().sum() > 0
    # mmseg's SiLogLoss is another formula (var + 0.5 mean^2 per image)
    from mmseg.models.losses import SiLogLoss
    assert not torch.allclose(SiLogLoss()(pred, gt) * 10, value)
    # no valid pixel: 0, still attached to the graph
    zero = loss(pred, torch.zeros_like(gt))
    assert zero.item() == 0 and zero.requires_grad


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='min_depth'):
        _head(min_depth=0.0)
    with pytest.raises(ValueError, match='min_depth'):
        _head(min_depth=5.0, max_depth=2.0)
    with pytest.raises(ValueError, match='num_queries'):
        _head(num_queries=0)
    with pytest.raises(ValueError, match='feat_level'):
        _head(feat_level=-1)
    with pytest.raises(TypeError, match='loss_decode'):
        _head(loss_decode='SigLoss')
    with pytest.raises(ValueError, match='variance_focus'):
        SigLoss(variance_focus=1.5)
    with pytest.raises(ValueError, match='loss_name'):
        SigLoss(loss_name='depth')
    with pytest.raises(ValueError, match='same|one shape'):
        SigLoss()(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3))
    head = _head()
    with pytest.raises(ValueError, match='num_queries, in_channels'):
        head.forward_bins(torch.zeros(1, 2, 8), torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match='feat_channels'):
        head.forward_bins(torch.zeros(1, 3, 8), torch.zeros(1, 5, 2, 2))
    with pytest.raises(TypeError, match='GLIDDecoded'):
        head((torch.zeros(1, 4, 2, 2), ))
    with pytest.raises(ValueError, match='num_queries'):
        from glid_mm.models.segmentors import GLIDDepthEstimator  # noqa
        c = Config.fromfile(
            osp.join(osp.dirname(__file__), '..', '..', '..', TINY))
        c.model.decoder.num_queries = 10  # the head's 64 is the only source
        build_model(c.model)


def _fixed_batch(cfg, indices):
    """Deterministic 96x128 frames (no augmentation) for the loss test."""
    from mmseg.registry import DATASETS
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
        dict(type='Resize', scale=(128, 96), keep_ratio=False),
        dict(type='PackSegInputs'),
    ]
    dataset = DATASETS.build(ds_cfg)
    return pseudo_collate([dataset[i] for i in indices])


def test_every_parameter_gets_a_gradient_and_loss_keys(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(_fixed_batch(cfg, [0, 1]), training=True)
    losses = model.loss(**data)
    assert set(losses) == {
        'decode.loss_depth', 'decode.d0.loss_depth', 'decode.d1.loss_depth'
    }  # 3 decoder blocks
    sum(losses.values()).backward()
    missing = [
        n for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing, missing


@pytest.mark.slow
def test_loss_falls_on_redwood_and_depth_metric_runs(cfg, tmp_path):
    """20 steps of the tiny config's AdamW (lr raised to 2e-3 for so short a
    run) on 2 real frames, then a 2-iteration runner (real pipeline)
    validated with DepthMetric."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.optimizer.lr = 2e-3
    optim = build_optim_wrapper(model, optim_cfg)
    data = model.data_preprocessor(_fixed_batch(cfg, [0, 3]), training=True)
    values = []
    for _ in range(20):
        loss = model.loss(**data)['decode.loss_depth']
        optim.update_params(loss)
        values.append(loss.item())
    # median of the last 5 steps: single steps on 2 frames at this lr
    # swing, one up to 1.4x the start (seen with one intra-op thread)
    assert sorted(values[-5:])[2] < 0.9 * values[0], values

    with torch.no_grad():
        model.eval()
        val = model.data_preprocessor(_fixed_batch(cfg, [0]), training=False)
        pred = model.predict(**val)[0].pred_depth_map.data
    assert pred.shape == (1, 480, 640)  # resized to the original frame
    assert (pred > 1e-3).all() and (pred < 10.0).all()

    from mmengine.runner import Runner
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.param_scheduler = []
    cfg.val_dataloader.dataset.indices = 2  # 2 of the 5 frames
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    for key in ('abs_rel', 'rmse', 'd1'):
        assert key in metrics and metrics[key] == metrics[key], metrics


def test_nyu_tiny_config_reads_the_nyu_frame(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, TINY_NYU))
    assert cfg.train_dataloader.dataset.data_root.endswith('depth/nyu/')
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS
    ds = cfg.val_dataloader.dataset
    ds.data_root = osp.join(data_root, 'depth', 'nyu')
    sample = DATASETS.build(ds)[0]
    gt = sample['data_samples'].gt_depth_map.data
    assert gt.shape == (1, 120, 160) and gt.max() <= 10.0


@pytest.mark.parametrize('config', BIG)
def test_big_configs_build_and_head_size(project_root, config):
    """Swin-B / Swin-L NYU recipes, model only; the linear head's size next
    to supp. Table 3 (depth: 1.3 M)."""
    cfg = Config.fromfile(osp.join(project_root, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    model = build_model(cfg.model)
    assert model.decoder.queries.num_queries == 64
    head = sum(p.numel() for p in model.decode_head.parameters())
    assert head == 512 * 257 + 257 == 131841  # vs 1.3 M in supp. Table 3
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.train_cfg.max_iters == 38400
    assert cfg.train_dataloader.batch_size * 8 == 16
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == cosine.begin == 11520  # 30 % of 38.4k
    assert cfg.model.backbone.drop_path_rate == 0.1
