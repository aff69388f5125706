import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from glid_mm.datasets.transforms import M3ITwoViews
from glid_mm.models.layers.m3i_geometry import relative_patch_coords


def _crop(scale=64, ratio=(0.2, 1.0), interpolation='bicubic'):
    return dict(
        type='RandomResizedCrop',
        scale=scale,
        crop_ratio_range=ratio,
        backend='pillow',
        interpolation=interpolation)


@pytest.fixture(scope='module')
def ant_image(data_root):
    import glid_mm  # noqa: F401
    path = osp.join(data_root, 'hymenoptera', 'train', 'ants', '0013035.jpg')
    return mmcv.imread(path)


@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_views_are_the_recorded_crops(ant_image, flip_prob):
    np.random.seed(0)
    t = M3ITwoViews(crop=_crop(), flip_prob=flip_prob)
    out = t(dict(img=ant_image.copy()))
    assert len(out['img']) == 2
    assert out['m3i_boxes'].shape == (2, 4)
    assert out['m3i_boxes'].dtype == np.float32
    assert out['m3i_flips'].tolist() == [bool(flip_prob)] * 2
    assert out['img_shape'] == (64, 64)
    H, W = ant_image.shape[:2]
    for view, (x0, y0, w, h) in zip(out['img'], out['m3i_boxes']):
        x0, y0, w, h = (int(v) for v in (x0, y0, w, h))
        assert 0 <= x0 and x0 + w <= W and 0 <= y0 and y0 + h <= H
        ref = mmcv.imresize(
            ant_image[y0:y0 + h, x0:x0 + w], (64, 64),
            interpolation='bicubic',
            backend='pillow')
        if flip_prob:
            ref = mmcv.imflip(ref)
        assert np.array_equal(view, ref)
    # two independent crops
    assert not np.array_equal(out['m3i_boxes'][0], out['m3i_boxes'][1])


def _sample(view, y, x):
    """Bilinear value at continuous (y, x); pixel i spans [i, i + 1)."""
    v = view[..., :2].astype(float)
    fy, fx = y - 0.5, x - 0.5
    y0, x0 = int(np.floor(fy)), int(np.floor(fx))
    wy, wx = fy - y0, fx - x0
    return ((1 - wy) * (1 - wx) * v[y0, x0] + (1 - wy) * wx * v[y0, x0 + 1] +
            wy * (1 - wx) * v[y0 + 1, x0] + wy * wx * v[y0 + 1, x0 + 1])


def test_relative_positions_match_image_content():
    """Target patch centres land where the input view shows the same pixel.

    The image encodes its own coordinates (x in channel 0, y in channel 1),
    so each view pixel tells where in the original it comes from; bilinear
    resizing keeps that linear ramp, up to uint8 rounding.
    """
    size = 256
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)
    t = M3ITwoViews(
        crop=_crop(scale=64, ratio=(0.3, 1.0), interpolation='bilinear'),
        flip_prob=0.5)
    np.random.seed(1)
    checked, flips_seen = 0, set()
    for _ in range(12):
        out = t(dict(img=img.copy()))
        boxes = torch.from_numpy(out['m3i_boxes'])
        flips = torch.from_numpy(out['m3i_flips'])
        flips_seen.add(tuple(flips.tolist()))
        coords, _ = relative_patch_coords(boxes[:1], flips[:1], boxes[1:],
                                          flips[1:], 4)
        inp, tgt = out['img']
        for idx in range(16):
            r, c = divmod(idx, 4)
            row, col = coords[0, idx].tolist()
            iy, ix = (row + 0.5) * 16, (col + 0.5) * 16  # input-view pixels
            if not (1 <= iy <= 63 and 1 <= ix <= 63):
                continue  # the target patch lies outside the input view
            target_xy = _sample(tgt, 16 * r + 8, 16 * c + 8)
            input_xy = _sample(inp, iy, ix)
            assert np.abs(target_xy -
                          input_xy).max() <= 1.5, (idx, out['m3i_boxes'],
                                                   out['m3i_flips'])
            checked += 1
    assert checked > 30
    assert len(flips_seen) == 4  # every flip combination was exercised


def test_photometric_pipelines_and_packing(ant_image):
    from mmpretrain.datasets.transforms import PackInputs

    import glid_mm  # noqa: F401
    np.random.seed(0)
    t = M3ITwoViews(
        crop=_crop(),
        input_pipeline=[dict(type='Solarize', thr=0, prob=1.0)],
        target_pipeline=[])
    out = t(dict(img=ant_image.copy()))
    packed = PackInputs(algorithm_keys=('m3i_boxes', 'm3i_flips'))(out)
    assert [v.shape for v in packed['inputs']] == [(3, 64, 64)] * 2
    sample = packed['data_samples']
    assert np.array_equal(sample.m3i_boxes, out['m3i_boxes'])
    assert 'SolarizeAdd' not in repr(t) and 'Solarize' in repr(t)


def test_builds_from_the_registry_in_mmpretrain_scope():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import TRANSFORMS

    import glid_mm  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        t = TRANSFORMS.build(dict(type='M3ITwoViews', crop=_crop()))
    assert isinstance(t, M3ITwoViews)


def test_bad_arguments(ant_image):
    with pytest.raises(TypeError, match='RandomResizedCrop'):
        M3ITwoViews(crop=dict(type='CenterCrop', crop_size=32))
    with pytest.raises(TypeError, match='config dict'):
        M3ITwoViews(crop='RandomResizedCrop')
    with pytest.raises(ValueError, match='flip_prob'):
        M3ITwoViews(crop=_crop(), flip_prob=1.5)
    t = M3ITwoViews(
        crop=_crop(), target_pipeline=[dict(type='Resize', scale=32)])
    with pytest.raises(ValueError, match='target_pipeline changed the view'):
        t(dict(img=ant_image.copy()))
