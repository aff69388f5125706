"""GLIDMaskGenerator (GLID Sec. 4, Table 7): exact counts, the grid
lattices, block shapes, seeding, the transform and its argument checks.

Counts for every strategy and ratio of Table 7 and the contiguity of block
masks are also checked in ``tests/models/algorithms/test_glid.py``."""
import numpy as np
import pytest

import glid_mm  # noqa: F401
from glid_mm.datasets.transforms.glid_mask_generator import GLIDMaskGenerator


@pytest.mark.parametrize(
    'ratio, h, w, n',
    [
        (0.75, 4, 4, 12),
        (0.5, 3, 5, 8),  # round(7.5) = 8 (round half to even)
        (0.6, 2, 3, 4),  # round(3.6)
        (0.01, 2, 2, 1),  # at least one masked patch
        (0.99, 2, 2, 3),  # at least one visible patch
    ])
def test_num_masked(ratio, h, w, n):
    gen = GLIDMaskGenerator(mask_ratio=ratio)
    assert gen.num_masked(h, w) == n
    for strategy in GLIDMaskGenerator.STRATEGIES:
        np.random.seed(0)
        gen = GLIDMaskGenerator(
            mask_ratio=ratio, strategy=strategy, min_block_patches=1)
        mask = gen.generate(h, w)
        assert mask.dtype == bool and mask.shape == (h, w)
        assert int(mask.sum()) == n, strategy


@pytest.mark.parametrize('seed', range(4))
def test_grid_075_keeps_one_patch_per_2x2_cell(seed):
    """Ratio 0.75 on an 8x8 grid: the visible patches are a stride-2
    lattice (one per 2x2 cell, all at the same offset in their cell)."""
    np.random.seed(seed)
    mask = GLIDMaskGenerator(mask_ratio=0.75, strategy='grid').generate(8, 8)
    visible = np.argwhere(~mask)
    assert len(visible) == 16
    assert len({(y % 2, x % 2) for y, x in visible}) == 1
    cells = {(y // 2, x // 2) for y, x in visible}
    assert len(cells) == 16


@pytest.mark.parametrize('seed', range(4))
def test_grid_05_is_a_checkerboard(seed):
    np.random.seed(seed)
    mask = GLIDMaskGenerator(mask_ratio=0.5, strategy='grid').generate(8, 8)
    parity = (np.arange(8)[:, None] + np.arange(8)[None, :]) % 2
    assert (mask == (parity == 0)).all() or (mask == (parity == 1)).all()


def test_grid_offset_is_random():
    masks = set()
    for seed in range(20):
        np.random.seed(seed)
        gen = GLIDMaskGenerator(mask_ratio=0.75, strategy='grid')
        masks.add(gen.generate(8, 8).tobytes())
    assert len(masks) == 4  # the four offsets of the stride-2 lattice


def test_block_of_fixed_shape():
    """min_block_patches = the count and aspect ratio 1: one 2x2 square."""
    gen = GLIDMaskGenerator(
        mask_ratio=0.25,
        strategy='block',
        min_block_patches=4,
        block_aspect_ratio=(1, 1))
    for seed in range(5):
        np.random.seed(seed)
        mask = gen.generate(4, 4)
        ys, xs = np.nonzero(mask)
        assert mask.sum() == 4
        assert ys.max() - ys.min() == 1 and xs.max() - xs.min() == 1


def test_block_trims_the_last_block_to_the_count():
    """A 3x3 block (min 9 patches, aspect 1) on a 5x5 grid that needs 7:
    the block is trimmed at random to exactly 7 of its 9 patches."""
    gen = GLIDMaskGenerator(
        mask_ratio=7 / 25,
        strategy='block',
        min_block_patches=9,
        block_aspect_ratio=(1, 1))
    np.random.seed(0)
    mask = gen.generate(5, 5)
    ys, xs = np.nonzero(mask)
    assert mask.sum() == 7
    assert ys.max() - ys.min() <= 2 and xs.max() - xs.min() <= 2


@pytest.mark.parametrize('strategy', GLIDMaskGenerator.STRATEGIES)
def test_same_seed_same_mask(strategy):
    gen = GLIDMaskGenerator(mask_ratio=0.6, strategy=strategy)
    draws = []
    for seed in (3, 3, 4):
        np.random.seed(seed)
        draws.append([gen.generate(7, 9) for _ in range(3)])
    for a, b in zip(draws[0], draws[1]):
        assert np.array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(draws[0], draws[2]))


def test_random_masks_cover_every_patch_uniformly():
    """Over many draws, each patch is masked about mask_ratio of the time."""
    np.random.seed(0)
    gen = GLIDMaskGenerator(mask_ratio=0.75)
    freq = np.mean([gen.generate(4, 4) for _ in range(2000)], axis=0)
    assert np.abs(freq - 0.75).max() < 0.05


def test_transform_adds_mask_on_patch_grid():
    gen = GLIDMaskGenerator(mask_patch_size=16, mask_ratio=0.5)
    img = np.zeros((32, 64, 3), np.uint8)
    np.random.seed(0)
    results = gen.transform(dict(img=img, img_path='x.jpg'))
    assert results['img'] is img and results['img_path'] == 'x.jpg'
    assert results['mask'].shape == (2, 4)
    assert results['mask'].dtype == bool and results['mask'].sum() == 4
    # through BaseTransform.__call__ and the mmpretrain registry
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        built = TRANSFORMS.build(
            dict(type='GLIDMaskGenerator', mask_patch_size=16, mask_ratio=0.5))
    assert built(dict(img=img))['mask'].shape == (2, 4)


def test_transform_rejects_image_not_multiple_of_patch():
    gen = GLIDMaskGenerator(mask_patch_size=16)
    with pytest.raises(
            ValueError,
            match=r'image size \(40, 64\) is not a '
            'multiple of mask_patch_size=16'):
        gen.transform(dict(img=np.zeros((40, 64, 3), np.uint8)))


def test_repr():
    assert repr(GLIDMaskGenerator(
        8, 0.5,
        'grid')) == ("GLIDMaskGenerator(mask_patch_size=8, mask_ratio=0.5, "
                     "strategy='grid')")


@pytest.mark.parametrize('kwargs, match', [
    (dict(strategy='checker'), 'strategy must be one of'),
    (dict(mask_ratio=0.0), r'mask_ratio must be in \(0, 1\)'),
    (dict(mask_ratio=1.0), r'mask_ratio must be in \(0, 1\)'),
    (dict(mask_patch_size=0), 'mask_patch_size must be positive'),
    (dict(min_block_patches=0), 'min_block_patches must be >= 1'),
    (dict(block_aspect_ratio=(2.0, 1.0)), 'block_aspect_ratio must be'),
    (dict(block_aspect_ratio=(0.0, 1.0)), 'block_aspect_ratio must be'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLIDMaskGenerator(**kwargs)
