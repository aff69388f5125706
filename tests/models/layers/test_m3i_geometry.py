import pytest
import torch
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.structures import DataSample

from glid_mm.models.layers.m3i_geometry import (boxes_from_samples,
                                                gather_tokens, grid_coords,
                                                query_position_features,
                                                relative_patch_coords,
                                                sincos_2d)


def _rel(inp, tgt, flip_in=False, flip_tgt=False, grid=4):
    return relative_patch_coords(
        torch.tensor([inp], dtype=torch.float32), torch.tensor([flip_in]),
        torch.tensor([tgt], dtype=torch.float32), torch.tensor([flip_tgt]),
        grid)


def test_hand_example_offsets_and_scale():
    # input view = original [0, 64)^2 (input patch = 16 px of the original);
    # target = x in [32, 64), y in [16, 48) (target patch = 8 px).
    coords, scales = _rel([0, 0, 64, 64], [32, 16, 32, 32])
    assert scales.tolist() == [[0.5, 0.5]]
    # target patch (0, 0): centre (row 20, col 36) px -> 20/16 - .5, 36/16 - .5
    assert coords[0, 0].tolist() == [0.75, 1.75]
    # target patch (1, 2): centre (28, 52) px
    assert coords[0, 1 * 4 + 2].tolist() == [1.25, 2.75]


def test_hand_example_flips():
    # input flipped: column measured from the crop's right edge (64 - 36)/16
    coords, _ = _rel([0, 0, 64, 64], [32, 16, 32, 32], flip_in=True)
    assert coords[0, 0].tolist() == [0.75, 1.25]
    # target flipped: its patch (0, 0) is the crop's right-most one (60 px)
    coords, _ = _rel([0, 0, 64, 64], [32, 16, 32, 32], flip_tgt=True)
    assert coords[0, 0].tolist() == [0.75, 3.25]


def test_hand_example_offset_nonsquare_input():
    # input (x0=8, y0=4, w=32, h=64): patches 8 px wide, 16 px high
    coords, scales = _rel([8, 4, 32, 64], [32, 16, 32, 32])
    assert scales.tolist() == [[0.5, 1.0]]
    assert coords[0, 0].tolist() == [0.5, 3.0]


@pytest.mark.parametrize('flip', [False, True])
def test_same_view_gives_the_plain_grid(flip):
    coords, scales = _rel([5, 7, 40, 30], [5, 7, 40, 30], flip, flip, (3, 5))
    assert torch.allclose(coords[0], grid_coords((3, 5)), atol=1e-5)
    assert scales.tolist() == [[1.0, 1.0]]


def test_sincos_matches_mmpretrain_on_the_grid():
    ours = sincos_2d(grid_coords(4), 32)
    ref = build_2d_sincos_position_embedding(4, 32)[0]
    assert torch.allclose(ours, ref, atol=1e-6)
    # rows and columns are told apart
    assert not torch.allclose(ours[1], ours[4])


def test_query_features_scale_part():
    coords = grid_coords(2)[None]
    feats = query_position_features(coords, torch.ones(1, 2), 8)
    assert feats.shape == (1, 4, 16)
    assert torch.equal(feats[..., :8], sincos_2d(coords, 8))
    # log(1) = 0: sin 0 / cos 1 for every frequency
    assert torch.equal(
        feats[..., 8:],
        torch.tensor([0., 0., 1., 1., 0., 0., 1., 1.]).expand(1, 4, 8))
    other = query_position_features(coords, torch.full((1, 2), 0.5), 8)
    assert not torch.equal(other[..., 8:], feats[..., 8:])


def test_gather_tokens():
    tokens = torch.arange(2 * 4 * 3.).view(2, 4, 3)
    out = gather_tokens(tokens, torch.tensor([[3, 0], [1, 1]]))
    assert torch.equal(out[0], tokens[0, [3, 0]])
    assert torch.equal(out[1], tokens[1, [1, 1]])


def test_boxes_from_samples():
    s = DataSample()
    s.set_field(
        torch.tensor([[0., 0., 4., 4.], [1., 1., 2., 2.]]), 'm3i_boxes')
    s.set_field(torch.tensor([True, False]), 'm3i_flips')
    boxes, flips = boxes_from_samples([s, s])
    assert boxes.shape == (2, 2, 4) and flips.shape == (2, 2)
    with pytest.raises(KeyError, match='M3ITwoViews'):
        boxes_from_samples([DataSample()])


def test_bad_geometry_inputs():
    good = torch.tensor([[0., 0., 8., 8.]])
    flag = torch.tensor([False])
    with pytest.raises(ValueError, match=r'input boxes must be \[B, 4\]'):
        relative_patch_coords(good[0], flag, good, flag, 2)
    with pytest.raises(ValueError, match='target flips'):
        relative_patch_coords(good, flag, good, torch.tensor([1, 0]), 2)
    with pytest.raises(ValueError, match='positive w and h'):
        relative_patch_coords(good, flag, torch.tensor([[0., 0., 0., 8.]]),
                              flag, 2)
    with pytest.raises(ValueError, match='grid_size'):
        relative_patch_coords(good, flag, good, flag, (2, 2, 2))
    with pytest.raises(ValueError, match='multiple of 4'):
        sincos_2d(grid_coords(2), 6)
    with pytest.raises(ValueError, match='scales must be positive'):
        query_position_features(grid_coords(2)[None], torch.zeros(1, 2), 8)
