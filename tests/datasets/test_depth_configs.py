"""configs/_base_/datasets/{nyu,redwood}_depth.py: mmseg's NYUDataset,
LoadDepthAnnotation, DepthMetric and SiLogLoss on the bundled depth frames.

No glid_mm class is involved: the bundled ``images/`` + ``depth_mm/`` layout
is configured on mmseg's own pieces (data_prefix, depth_rescale_factor).
"""
import glob
import math
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401  (registers CheckDepthMap used by the configs)

CONFIGS = dict(
    nyu=('nyu_depth.py', 1, (120, 160)),
    redwood=('redwood_depth.py', 5, (480, 640)))


def _cfg(project_root, data_root, name):
    cfg = Config.fromfile(
        osp.join(project_root, 'configs/_base_/datasets', CONFIGS[name][0]))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = osp.join(data_root, 'depth', name)
    return cfg


def _build(dataset_cfg):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(dataset_cfg)


def _metric(cfg):
    from mmseg.registry import METRICS
    init_default_scope('mmseg')
    return METRICS.build(cfg.val_evaluator)


def _evaluate(metric, gt, pred):
    """Run ``metric`` on one sample given as [H, W] tensors (metres)."""
    metric.results.clear()
    sample = dict(
        gt_depth_map=dict(data=gt[None]), pred_depth_map=dict(data=pred[None]))
    metric.process({}, [sample])
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_config_points_at_bundled_layout(project_root, name):
    cfg = Config.fromfile(
        osp.join(project_root, 'configs/_base_/datasets', CONFIGS[name][0]))
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        assert loader.dataset.type == 'NYUDataset'
        assert loader.dataset.data_root.endswith(f'/depth/{name}/')
        assert loader.dataset.data_prefix == dict(
            img_path='images', depth_map_path='depth_mm')
        loads = [
            t for t in loader.dataset.pipeline
            if t['type'] == 'LoadDepthAnnotation'
        ]
        assert len(loads) == 1 and loads[0]['depth_rescale_factor'] == 1e-3
    assert cfg.val_evaluator.type == 'DepthMetric'
    assert cfg.val_evaluator.crop_type is None
    assert cfg.test_evaluator == cfg.val_evaluator


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_sizes_and_depth_in_metres(project_root, data_root, name):
    cfg = _cfg(project_root, data_root, name)
    _, size, shape = CONFIGS[name]
    images = sorted(
        glob.glob(osp.join(data_root, 'depth', name, 'images', '*.jpg')))
    assert len(images) == size
    dataset = _build(cfg.val_dataloader.dataset)
    assert len(dataset) == size
    assert [dataset.get_data_info(i)['img_path']
            for i in range(size)] == images
    for i in range(size):
        sample = dataset[i]
        path = dataset.get_data_info(i)['depth_map_path']
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint16 and raw.shape == shape
        depth = sample['data_samples'].gt_depth_map.data[0]
        assert depth.dtype == torch.float32 and tuple(depth.shape) == shape
        # a valid pixel: png / 1000 metres; invalid stays 0
        ys, xs = np.nonzero(raw)
        y, x = ys[len(ys) // 2], xs[len(xs) // 2]
        assert depth[y, x].item() == pytest.approx(
            raw[y, x] / 1000.0, rel=1e-6)
        assert torch.allclose(depth, torch.from_numpy(raw / 1000.0).float())
        assert (raw == 0).any()  # real sensor holes exist in every frame
        assert torch.equal(depth == 0, torch.from_numpy(raw == 0))
    if name == 'nyu':  # NYU's scene name -> mmseg's scene category id
        assert dataset.get_data_info(0)['category_id'] == \
            dataset.metainfo['classes'].index('bookstore')


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_train_pipeline_keeps_depth_aligned(project_root, data_root, name):
    cfg = _cfg(project_root, data_root, name)
    dataset = _build(cfg.train_dataloader.dataset)
    sample = dataset[0]
    _, h, w = sample['inputs'].shape
    depth = sample['data_samples'].gt_depth_map.data
    assert tuple(depth.shape) == (1, h, w)
    assert depth.min() >= 0 and depth.max() <= 10.0


@pytest.fixture(scope='module')
def redwood_gt(project_root, data_root):
    cfg = _cfg(project_root, data_root, 'redwood')
    dataset = _build(cfg.val_dataloader.dataset)
    return cfg, dataset[0]['data_samples'].gt_depth_map.data[0]


def test_depth_metric_ignores_invalid_pixels(redwood_gt):
    cfg, gt = redwood_gt
    invalid = gt == 0
    assert 0 < invalid.float().mean() < 0.5
    metric = _metric(cfg)
    # perfect on valid pixels, garbage where the sensor gave nothing
    pred = torch.where(invalid, torch.full_like(gt, 7.5), gt)
    res = _evaluate(metric, gt, pred)
    assert set(res) == set(metric.METRICS)
    assert res['abs_rel'] == pytest.approx(0, abs=1e-7)
    assert res['rmse'] == pytest.approx(0, abs=1e-6)
    assert res['d1'] == 1.0
    # 10 % too far everywhere: AbsRel 0.1, still within delta < 1.25
    res = _evaluate(metric, gt, torch.where(invalid, gt + 3.0, gt * 1.1))
    assert res['abs_rel'] == pytest.approx(0.1, rel=1e-4)
    assert res['d1'] == 1.0
    # 1.3x too far: outside delta1 (1.25) but inside delta2 (1.5625)
    res = _evaluate(metric, gt, gt * 1.3)
    assert res['abs_rel'] == pytest.approx(0.3, rel=1e-4)
    assert res['d1'] == 0.0 and res['d2'] == 1.0
    # rmse over valid pixels only, by hand
    valid = gt[~invalid]
    rmse = math.sqrt(((valid * 0.3)**2).mean().item())
    assert res['rmse'] == pytest.approx(rmse, rel=1e-4)


def test_depth_metric_max_depth(project_root, data_root):
    """NYU's 10 m saturation pixels are out of the [0.001, 10) range."""
    cfg = _cfg(project_root, data_root, 'nyu')
    gt = _build(cfg.val_dataloader.dataset)[0]['data_samples'].gt_depth_map
    gt = gt.data[0]
    saturated = gt >= 10.0
    assert saturated.any()
    pred = torch.where(saturated, torch.ones_like(gt), gt)
    res = _evaluate(_metric(cfg), gt, pred)
    assert res['abs_rel'] == pytest.approx(0, abs=1e-7)


def test_silog_loss_ignores_invalid_pixels(redwood_gt):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    loss = MODELS.build(dict(type='SiLogLoss'))
    _, gt = redwood_gt
    invalid = gt == 0
    target = gt[None, None]
    exact = torch.where(invalid, torch.full_like(gt, 3.0), gt)[None, None]
    assert loss(exact, target).item() == pytest.approx(0, abs=1e-6)
    # a global scale is a constant log offset d: sqrt(d^2 - d^2 / 2)
    scaled = torch.where(invalid, torch.full_like(gt, 0.1), 2 * gt)
    expected = math.log(2) / math.sqrt(2)
    assert loss(scaled[None, None], target).item() == pytest.approx(
        expected, rel=1e-4)
    scaled_other = torch.where(invalid, torch.full_like(gt, 9.0), 2 * gt)
    assert loss(scaled_other[None, None], target).item() == pytest.approx(
        expected, rel=1e-4)


def test_depth_metric_subset_is_broken_upstream():
    """Documents the mmseg 1.2.2 bug noted in nyu_depth.py; when it fails,
    mmseg fixed ``DepthMetric(depth_metrics=[...])`` and the note can go."""
    from mmseg.evaluation import DepthMetric
    with pytest.raises(TypeError, match='isinstance'):
        DepthMetric(depth_metrics=['abs_rel'])
