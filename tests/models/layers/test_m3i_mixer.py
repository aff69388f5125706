import pytest
import torch

from glid_mm.models.layers.m3i_mixer import M3IMixer


def _images(batch=5, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    # distinct per image: offset by the index, plus noise
    base = torch.arange(batch, dtype=torch.float32).view(-1, 1, 1, 1) * 10
    return base + torch.rand(batch, 3, size, size, generator=g)


def test_patch_purity_and_partner():
    """Each p x p patch is image k's (mask 0) or image sigma(k)'s (mask 1)."""
    x = _images()
    mixer = M3IMixer(patch_size=16, mix_ratio=0.5)
    mixed, mask, sigma = mixer(x, generator=torch.Generator().manual_seed(1))
    assert mixed.shape == x.shape
    assert mask.shape == (5, 4, 4) and mask.dtype == torch.bool
    for k in range(5):
        for r in range(4):
            for c in range(4):
                sl = (slice(None), slice(16 * r, 16 * r + 16),
                      slice(16 * c, 16 * c + 16))
                src = sigma[k] if mask[k, r, c] else k
                assert torch.equal(mixed[k][sl], x[src][sl])
                other = k if mask[k, r, c] else sigma[k]
                assert not torch.equal(mixed[k][sl], x[other][sl])


@pytest.mark.parametrize('ratio,expected', [(0.5, 8), (0.25, 4), (0.75, 12),
                                            (0.3, 5)])
def test_ratio_exact_per_sample(ratio, expected):
    mixer = M3IMixer(patch_size=16, mix_ratio=ratio)
    _, mask, _ = mixer(_images(batch=6))
    assert mask.flatten(1).sum(1).tolist() == [expected] * 6


def test_sigma_is_a_derangement_by_default():
    mixer = M3IMixer(patch_size=16)
    g = torch.Generator().manual_seed(0)
    for batch in (2, 3, 7):
        for _ in range(20):
            _, _, sigma = mixer(_images(batch=batch, size=32), generator=g)
            assert sorted(sigma.tolist()) == list(range(batch))
            assert not (sigma == torch.arange(batch)).any()


def test_self_pairs_allowed_when_asked():
    mixer = M3IMixer(patch_size=16, allow_self_pairs=True)
    g = torch.Generator().manual_seed(0)
    fixed_points = 0
    for _ in range(30):
        _, _, sigma = mixer(_images(batch=3, size=32), generator=g)
        assert sorted(sigma.tolist()) == [0, 1, 2]
        fixed_points += int((sigma == torch.arange(3)).sum())
    assert fixed_points > 0
    _, _, sigma = mixer(_images(batch=1, size=32))
    assert sigma.tolist() == [0]


def test_generator_makes_it_reproducible():
    mixer = M3IMixer(patch_size=8, mix_ratio=0.4)
    x = _images(batch=4, size=32)
    a = mixer(x, generator=torch.Generator().manual_seed(3))
    b = mixer(x, generator=torch.Generator().manual_seed(3))
    c = mixer(x, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[1], c[1])


def test_builds_from_mmpretrain_registry():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import glid_mm  # noqa: F401

    # mmengine builds in the current scope's registry: make it mmpretrain's
    # (another test may have left its own scope current)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        mixer = MODELS.build(
            dict(type='M3IMixer', patch_size=16, mix_ratio=0.5))
    assert isinstance(mixer, M3IMixer)
    assert 'mix_ratio=0.5' in repr(mixer)


@pytest.mark.parametrize('kwargs,match', [
    (dict(patch_size=0), 'patch_size'),
    (dict(patch_size=16.0), 'patch_size'),
    (dict(mix_ratio=0.0), 'mix_ratio'),
    (dict(mix_ratio=1.0), 'mix_ratio'),
    (dict(mix_ratio=-0.2), 'mix_ratio'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M3IMixer(**kwargs)


def test_bad_inputs():
    mixer = M3IMixer(patch_size=16)
    with pytest.raises(ValueError, match='multiple of patch_size=16'):
        mixer(torch.zeros(2, 3, 40, 32))
    with pytest.raises(ValueError, match=r'\[B, C, H, W\]'):
        mixer(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match='batch size 1'):
        mixer(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match='at least one'):
        M3IMixer(patch_size=16, mix_ratio=0.1)(torch.zeros(2, 3, 32, 32))
