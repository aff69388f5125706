"""The visible-token helpers of GLID's Swin, one by one.

tests/models/backbones/test_glid_swin_visible.py checks the whole encoder
against a masked dense reference; here each helper against mmpretrain's own
dense pieces: token positions, the window a block really uses, the window
packing against Swin's shifted-window mask (brute force), attention, a block
and a patch merge on fully visible grids against ShiftWindowMSA / SwinBlock /
PatchMerging, and scatter / gather round trips.
"""
import pytest
import torch
from mmpretrain.models.backbones.swin_transformer import SwinBlock
from mmpretrain.models.utils import PatchMerging, ShiftWindowMSA

from glid_mm.models.layers.glid_visible_tokens import (
    VisiblePositions, effective_window, merge_visible, scatter_visible,
    visible_swin_block, visible_window_attention, window_groups)


def _units(B, grid, n, seed=0):
    """``[B, n]`` ascending random visible unit indices."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([
        torch.randperm(grid[0] * grid[1], generator=g)[:n].sort().values
        for _ in range(B)
    ])


def _all_units(B, grid):
    return torch.arange(grid[0] * grid[1]).repeat(B, 1)


def _flat(pos):
    """``[B, N]`` row-major index of each visible token on the full grid."""
    return pos.y * pos.hw[1] + pos.x


def _gather(dense, pos):
    """``[B, C, H, W]`` -> visible tokens ``[B, N, C]`` in pos's order."""
    B, C = dense.shape[:2]
    flat = dense.flatten(2).transpose(1, 2)  # [B, H*W, C]
    return torch.gather(flat, 1, _flat(pos)[..., None].expand(-1, -1, C))


def _visible_map(pos):
    """``[B, H, W]`` bool: the positions of ``pos``."""
    B = pos.y.shape[0]
    vis = torch.zeros(B, pos.hw[0] * pos.hw[1], dtype=torch.bool)
    vis[torch.arange(B)[:, None], _flat(pos)] = True
    return vis.view(B, *pos.hw)


# ----------------------------------------------------------------------
# VisiblePositions
# ----------------------------------------------------------------------
def test_positions_are_unit_major():
    # 2x3 units of 2x2 tokens; image 0 sees units 1 and 3, image 1 units
    # 0 and 5
    pos = VisiblePositions(torch.tensor([[1, 3], [0, 5]]), (2, 3), 2)
    assert pos.hw == (4, 6) and pos.t == 2 and pos.unit_grid == (2, 3)
    # unit 1: rows 0-1, cols 2-3; unit 3: rows 2-3, cols 0-1
    assert pos.y[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert pos.x[0].tolist() == [2, 3, 2, 3, 0, 1, 0, 1]
    # unit 0: rows 0-1, cols 0-1; unit 5: rows 2-3, cols 4-5
    assert pos.y[1].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert pos.x[1].tolist() == [0, 1, 0, 1, 4, 5, 4, 5]


def test_merged_positions_halve_the_unit_and_refuse_odd_widths():
    units = _units(2, (3, 3), 4)
    pos = VisiblePositions(units, (3, 3), 4)
    merged = pos.merged()
    assert merged.t == 2 and merged.hw == (6, 6)
    assert merged.units is units and merged.unit_grid == (3, 3)
    assert merged.y.shape == (2, 4 * 2 * 2)
    # a merged token sits at the top-left token of its 2x2 group / 2
    assert torch.equal(
        merged.y,
        pos.y.view(2, 4, 2, 2, 2, 2)[:, :, :, 0, :, 0].flatten(1) // 2)
    once = merged.merged()
    assert once.t == 1 and once.hw == (3, 3)
    assert torch.equal(_flat(once), units)  # one token per unit
    with pytest.raises(
            ValueError,
            match='1 tokens wide at this stage; 2x2 '
            'patch merging needs an even width'):
        once.merged()
    with pytest.raises(ValueError, match='3 tokens wide'):
        VisiblePositions(units, (3, 3), 3).merged()


# ----------------------------------------------------------------------
# effective_window
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    'hw, pad_small_map, expected',
    [
        ((14, 14), False, (7, 3)),
        ((9, 7), False, (7, 0)),  # the map is one window high: no shift
        ((9, 7), True, (7, 3)),
        ((5, 9), True, (7, 3)),  # padded to the window
    ])
def test_effective_window_follows_shift_window_msa(hw, pad_small_map,
                                                   expected):
    attn = ShiftWindowMSA(8, 2, 7, shift_size=3, pad_small_map=pad_small_map)
    assert effective_window(attn, hw) == expected


def test_effective_window_refuses_maps_smaller_than_the_window():
    attn = ShiftWindowMSA(8, 2, 7, shift_size=3)
    with pytest.raises(
            ValueError,
            match=r'feature map \(5, 9\) is smaller '
            r'than the window 7; set pad_small_map=True'):
        effective_window(attn, (5, 9))
    # mmpretrain refuses it as well
    with pytest.raises(AssertionError, match='smaller than the window'):
        attn(torch.zeros(1, 45, 8), (5, 9))


# ----------------------------------------------------------------------
# window_groups against Swin's shifted-window mask
# ----------------------------------------------------------------------
def _reference_groups(pos, window, shift):
    """Same-group matrix of all tokens ``[B*N, B*N]`` and each token's
    position in its (padded, rolled) window, from mmpretrain's mask."""
    B, N = pos.y.shape
    H, W = pos.hw
    Hp, Wp = -(-H // window) * window, -(-W // window) * window
    yr, xr = (pos.y - shift) % Hp, (pos.x - shift) % Wp
    win = (yr // window) * (Wp // window) + xr // window
    local = (yr % window) * window + xr % window
    b = torch.arange(B)[:, None].expand(B, N)
    win, local, b = win.flatten(), local.flatten(), b.flatten()
    same = (b[:, None] == b[None]) & (win[:, None] == win[None])
    mask = ShiftWindowMSA.get_attn_mask((Hp, Wp), window, shift)
    if mask is not None:  # Swin keeps the wrapped-around regions apart
        same &= mask[win[:, None], local[:, None], local[None]] == 0
    return same, local


@pytest.mark.parametrize(
    'grid, t, n, window, shift',
    [
        ((3, 3), 4, 4, 4, 2),  # windows = units
        ((3, 3), 4, 4, 3, 1),  # windows straddle units
        ((3, 3), 4, 5, 5, 2),  # 12 -> 15: padded windows
        ((3, 3), 4, 3, 6, 0),  # no shift
        ((2, 3), 2, 3, 4, 2),  # not square
        ((3, 3), 2, 9, 3, 1),  # everything visible
    ])
def test_window_groups_equal_swin_windows(grid, t, n, window, shift):
    pos = VisiblePositions(_units(2, grid, n, seed=window), grid, t)
    groups = window_groups(pos, window, shift)
    slot, M, K = groups['slot'], groups['num_groups'], groups['size']
    T = pos.y.numel()
    # every token has its own packed row
    assert slot.shape == (T, ) and slot.unique().numel() == T
    assert int(slot.max()) < M * K
    key_valid = groups['key_valid']
    assert key_valid.shape == (M, K) and int(key_valid.sum()) == T
    assert key_valid.view(-1)[slot].all()
    assert key_valid[:, 0].all()  # no empty packed window
    assert int(key_valid.sum(1).max()) == K  # K: the largest group
    # the groups are Swin's (shifted) windows, split where Swin's mask
    # keeps regions apart
    same, local = _reference_groups(pos, window, shift)
    group = slot // K
    assert torch.equal(group[:, None] == group[None], same)
    # relative position bias rows: those of mmpretrain's WindowMSA
    msa = ShiftWindowMSA(4, 1, window, shift_size=shift).w_msa
    rank = slot % K
    i, j = same.nonzero(as_tuple=True)
    assert torch.equal(groups['bias_index'][group[i], rank[i], rank[j]],
                       msa.relative_position_index[local[i], local[j]])
    index = groups['bias_index']
    assert index.shape == (M, K, K)
    assert index.min() >= 0
    assert index.max() < msa.relative_position_bias_table.shape[0]


def test_one_packing_per_image_keeps_the_batch_apart():
    units = torch.tensor([[0, 1], [0, 1]])  # both images: the same units
    pos = VisiblePositions(units, (2, 2), 2)
    groups = window_groups(pos, 2, 0)
    K = groups['size']
    group = (groups['slot'] // K).view(2, -1)
    assert K == 4 and groups['num_groups'] == 4
    assert not set(group[0].tolist()) & set(group[1].tolist())


# ----------------------------------------------------------------------
# attention, block and patch merge on fully visible grids
# ----------------------------------------------------------------------
def _full(B, grid, t):
    return VisiblePositions(_all_units(B, grid), grid, t)


@pytest.mark.parametrize('shift', [0, 2])
@pytest.mark.parametrize('t', [2, 4])  # units smaller / as large as windows
def test_attention_on_all_tokens_is_shift_window_msa(shift, t):
    torch.manual_seed(0)
    attn = ShiftWindowMSA(8, 2, 4, shift_size=shift).eval()
    torch.nn.init.normal_(attn.w_msa.relative_position_bias_table, std=0.5)
    grid = (8 // t, 12 // t)
    pos = _full(2, grid, t)
    H, W = pos.hw
    dense = torch.randn(2, 8, H, W)
    tokens = dense.flatten(2).transpose(1, 2)  # row-major [B, H*W, C]
    expected = _gather(
        attn(tokens, (H, W)).transpose(1, 2).reshape(2, 8, H, W), pos)
    key = effective_window(attn, pos.hw)
    out = visible_window_attention(attn.w_msa, _gather(dense, pos),
                                   window_groups(pos, *key))
    # Swin masks other regions with -100, the packing leaves them out
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_a_token_alone_in_its_window_attends_to_itself():
    torch.manual_seed(0)
    attn = ShiftWindowMSA(8, 2, 2).eval()
    # 1-token units, windows of 2x2 tokens, one visible token per window
    units = torch.tensor([[0, 2, 8, 10]])
    pos = VisiblePositions(units, (4, 4), 1)
    groups = window_groups(pos, 2, 0)
    assert groups['size'] == 1 and groups['num_groups'] == 4
    x = torch.randn(1, 4, 8)
    msa = attn.w_msa
    v = msa.qkv(x)[..., 16:]
    torch.testing.assert_close(
        visible_window_attention(msa, x, groups), msa.proj(v))


@pytest.mark.parametrize('shift', [False, True])
@pytest.mark.parametrize('with_cp', [False, True])
def test_block_on_all_tokens_is_swin_block(shift, with_cp):
    torch.manual_seed(0)
    block = SwinBlock(8, 2, window_size=4, shift=shift)
    torch.nn.init.normal_(
        block.attn.w_msa.relative_position_bias_table, std=0.5)
    pos = _full(1, (2, 2), 4)
    H, W = pos.hw
    dense = torch.randn(1, 8, H, W)
    ref_in = dense.flatten(2).transpose(1, 2).clone().requires_grad_()
    ref = block(ref_in, (H, W))
    block.with_cp = with_cp  # the visible block recomputes (checkpoint)
    expected = _gather(ref.transpose(1, 2).reshape(1, 8, H, W), pos)
    x = _gather(dense, pos).requires_grad_()
    out = visible_swin_block(
        block, x, window_groups(pos, *effective_window(block.attn, pos.hw)))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    grads = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    (expected * weight).sum().backward()
    for a, b in zip(grads, block.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        x.grad,
        _gather(ref_in.grad.transpose(1, 2).reshape(1, 8, H, W), pos),
        rtol=1e-4,
        atol=1e-5)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(use_post_norm=True),
    dict(norm_cfg=None),
])
def test_merge_on_all_tokens_is_patch_merging(kwargs):
    torch.manual_seed(0)
    merging = PatchMerging(4, 6, **kwargs)
    pos = _full(2, (2, 3), 4)
    H, W = pos.hw
    dense = torch.randn(2, 4, H, W)
    out, (h, w) = merging(dense.flatten(2).transpose(1, 2), (H, W))
    merged = pos.merged()
    assert (h, w) == merged.hw
    expected = _gather(out.transpose(1, 2).reshape(2, 6, h, w), merged)
    got = merge_visible(merging, _gather(dense, pos), pos)
    assert got.shape == (2, 6 * 2 * 2, 6)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_merge_inside_units_equals_dense_merge_at_visible_units():
    """A 2x2 group never straddles units: merging visible units only gives
    the dense merge of the masked (zero-filled) map at visible units."""
    torch.manual_seed(0)
    merging = PatchMerging(4, 6)
    pos = VisiblePositions(_units(2, (3, 3), 4), (3, 3), 2)
    x = torch.randn(2, pos.y.shape[1], 4)
    dense = scatter_visible(x, pos)
    H, W = pos.hw
    out, (h, w) = merging(dense.flatten(2).transpose(1, 2), (H, W))
    expected = _gather(out.transpose(1, 2).reshape(2, 6, h, w), pos.merged())
    torch.testing.assert_close(
        merge_visible(merging, x, pos), expected, rtol=1e-5, atol=1e-6)


def test_merge_refuses_odd_unit_widths():
    pos = VisiblePositions(torch.tensor([[0]]), (1, 1), 3)
    with pytest.raises(
            ValueError,
            match='3 tokens wide here; 2x2 patch '
            'merging needs an even width'):
        merge_visible(PatchMerging(4, 8), torch.zeros(1, 9, 4), pos)


# ----------------------------------------------------------------------
# scatter_visible
# ----------------------------------------------------------------------
@pytest.mark.parametrize('grid, t, n', [((3, 3), 2, 4), ((2, 5), 3, 7),
                                        ((2, 2), 1, 4)])
def test_scatter_gather_round_trips(grid, t, n):
    pos = VisiblePositions(_units(2, grid, n, seed=n), grid, t)
    x = torch.randn(2, pos.y.shape[1], 5)
    dense = scatter_visible(x, pos)
    assert dense.shape == (2, 5, grid[0] * t, grid[1] * t)
    # each token lands at its own position ...
    b = torch.arange(2)[:, None]
    assert torch.equal(dense.permute(0, 2, 3, 1)[b, pos.y, pos.x], x)
    assert torch.equal(_gather(dense, pos), x)
    # ... and everything else is zero
    vis = _visible_map(pos)
    assert (dense.permute(0, 2, 3, 1)[~vis] == 0).all()
    assert int(vis.sum()) == x.shape[0] * x.shape[1]
    # map -> tokens -> map keeps the visible part of any map
    full = torch.randn_like(dense)
    torch.testing.assert_close(
        scatter_visible(_gather(full, pos), pos), full * vis[:, None])


def test_scatter_passes_gradients_to_the_visible_tokens_only():
    pos = VisiblePositions(_units(1, (2, 2), 2), (2, 2), 2)
    x = torch.randn(1, 8, 3, requires_grad=True)
    weight = torch.randn(1, 3, 4, 4)
    (scatter_visible(x, pos) * weight).sum().backward()
    torch.testing.assert_close(x.grad, _gather(weight, pos))


def test_helpers_keep_dtype():
    pos = VisiblePositions(_units(1, (2, 2), 2), (2, 2), 2)
    x = torch.randn(1, 8, 4, dtype=torch.float64)
    assert scatter_visible(x, pos).dtype == torch.float64
    merging = PatchMerging(4, 8).double()
    assert merge_visible(merging, x, pos).dtype == torch.float64
    attn = ShiftWindowMSA(4, 2, 2).double()
    groups = window_groups(pos, 2, 0)
    assert visible_window_attention(attn.w_msa, x, groups).dtype == \
        torch.float64
