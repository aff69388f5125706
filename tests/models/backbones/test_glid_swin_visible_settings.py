"""The visible-token GLID Swin in the settings the main equivalence test
(``test_glid_swin_visible.py``) leaves out: padded maps, ``pad_small_map``,
drop path and attention dropout, non-square inputs.

GLID Sec. 3.1: "the visual encoder is utilized to only process the visible
tokens following MAE". The encoder must therefore compute, at every visible
position, what the dense Swin computes when the keys at masked positions
are taken out of every window, and with nothing masked exactly the dense
Swin. Two references, both mmpretrain's own code on the full grid:

- nothing masked: ``SwinTransformer.forward`` itself (``model(x)``);
- masked: :func:`_reference`, mmpretrain's ``PatchEmbed``, ``SwinBlock``
  pieces, ``ShiftWindowMSA`` (its padding, cyclic shift, small-map rule and
  shift mask), ``PatchMerging`` and norms, with one change: the keys at
  masked positions get ``-1e9`` in ``WindowMSA``. The zero padding that
  ``ShiftWindowMSA`` adds to reach whole windows stays a key, as in Swin.

The models are tiny (two stages of width 16, 8 px mask units) so that every
test takes well under a second.
"""
from contextlib import contextmanager

import pytest
import torch
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.utils import ShiftWindowMSA, resize_pos_embed

import glid_mm  # noqa: F401
from glid_mm.models.layers.glid_visible_tokens import (
    VisiblePositions, effective_window, visible_window_attention,
    window_groups)
from glid_mm.registry import build_model


def _swin(window,
          img_size,
          depths=(2, 2),
          heads=(1, 2),
          embed_dims=16,
          attn_drop=0.,
          **kwargs):
    """A tiny GLID Swin; drop path off unless asked (build_model gives a
    model in training mode)."""
    kwargs.setdefault('drop_path_rate', 0.)
    return dict(
        type='GLIDSwinTransformer',
        arch=dict(
            embed_dims=embed_dims, depths=list(depths), num_heads=list(heads)),
        img_size=img_size,
        stage_cfgs=dict(
            block_cfgs=dict(
                window_size=window, attn_cfgs=dict(attn_drop=attn_drop))),
        out_indices=tuple(range(len(depths))),
        **kwargs)


def _build(cfg, seed=0):
    """The model with a visible relative position bias and QKV bias, so
    that position and padding-key mistakes show."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for stage in model.stages:
            for block in stage.blocks:
                block.attn.w_msa.relative_position_bias_table.normal_(0, .5)
                block.attn.w_msa.qkv.bias.normal_(0, .5)
        if model.use_abs_pos_embed:
            model.absolute_pos_embed.normal_(0, .5)
    return model


def _random_mask(B, grid, n_masked, seed):
    """``[B, U_h, U_w]``, ``n_masked`` units masked in every image."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(B, grid[0] * grid[1], dtype=torch.bool)
    for b in range(B):
        perm = torch.randperm(grid[0] * grid[1], generator=g)
        mask[b, perm[:n_masked]] = True
    return mask.view(B, *grid)


def _upsample(mask, hw):
    """Mask units ``[B, U_h, U_w]`` -> ``[B, H, W]`` on a token grid."""
    s = hw[0] // mask.shape[1]
    return mask.repeat_interleave(s, 1).repeat_interleave(s, 2)


@contextmanager
def _masked_keys(w_msa):
    """Let ``w_msa`` (a ``WindowMSA``) take windows with one extra channel,
    1 at masked positions, and mask those keys.

    ``ShiftWindowMSA`` pads, rolls and partitions the extra channel with the
    query, so the key mask lands in the very windows mmpretrain builds;
    Swin's zero padding has 0 there and stays a key. The output gets a zero
    channel back so that ``ShiftWindowMSA`` can reverse the windows."""
    dense = type(w_msa).forward

    def forward(windows, mask=None):
        x, masked = windows[..., :-1], windows[..., -1]
        n = masked.shape[1]
        keys = (masked[:, None, :] * -1e9).expand(-1, n, -1)
        if mask is not None:  # Swin's shift mask, [nW, n, n]
            keys = keys + mask.repeat(masked.shape[0] // mask.shape[0], 1, 1)
        out = dense(w_msa, x, mask=keys)
        return torch.cat([out, out.new_zeros(*out.shape[:2], 1)], -1)

    w_msa.forward = forward
    try:
        yield
    finally:
        del w_msa.forward


def _ref_block(block, x, hw, masked):
    """mmpretrain ``SwinBlock.forward`` with the keys at ``masked`` ``[B,
    H * W, 1]`` positions taken out."""
    identity = x
    query = torch.cat([block.norm1(x), masked.to(x.dtype)], -1)
    with _masked_keys(block.attn.w_msa):
        h = block.attn(query, hw)[..., :-1]
    x = identity + h
    return block.ffn(block.norm2(x), identity=x)


def _reference(model, x, mask):
    """``SwinTransformer.forward`` with masked keys taken out of every
    window: ``[B, C_i, H_i, W_i]`` per stage, valid at visible
    positions."""
    tokens, hw = model.patch_embed(x)
    if model.use_abs_pos_embed:
        tokens = tokens + resize_pos_embed(
            model.absolute_pos_embed, model.patch_resolution, hw,
            model.interpolate_mode, model.num_extra_tokens)
    tokens = model.drop_after_pos(tokens)
    outs = []
    for i, stage in enumerate(model.stages):
        masked = _upsample(mask, hw).flatten(1)[..., None]
        for block in stage.blocks:
            tokens = _ref_block(block, tokens, hw, masked)
        if i in model.out_indices:
            out = getattr(model, f'norm{i}')(tokens)
            outs.append(out.view(-1, *hw, out.shape[-1]).permute(0, 3, 1, 2))
        if stage.downsample is not None:
            tokens, hw = stage.downsample(tokens, hw)
    return outs


def _visible(mask, feat):
    """``[B, C, H, W]`` bool: the visible positions of ``feat``."""
    return (~_upsample(mask, feat.shape[-2:]))[:, None].expand_as(feat)


def _compare(model, x, mask, seed=0):
    """Forward both paths from the same RNG state, a loss on the visible
    positions, backward both; returns the largest output and gradient
    differences (gradients relative to their largest entry)."""
    torch.manual_seed(seed)
    feats = model(x, mask)
    weights = [torch.randn_like(f) for f in feats]

    def loss_of(outs):
        return sum(
            (o * w * _visible(mask, o)).sum() for o, w in zip(outs, weights))

    loss_of(feats).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    torch.manual_seed(seed)
    ref = _reference(model, x, mask)
    loss_of(ref).backward()
    out_diff = 0.
    for f, r in zip(feats, ref):
        vis = _visible(mask, f)
        assert torch.isfinite(f).all()
        assert (f[~vis] == 0).all()
        out_diff = max(out_diff, float((f - r)[vis].detach().abs().max()))
    grad_diff = 0.
    for name, p in model.named_parameters():
        scale = p.grad.abs().max().clamp(min=1.)
        grad_diff = max(grad_diff,
                        float(((grads[name] - p.grad) / scale).abs().max()))
    model.zero_grad()
    return out_diff, grad_diff


def _check(model, x, mask, seed=0):
    out_diff, grad_diff = _compare(model, x, mask, seed)
    assert out_diff < 1e-5, out_diff
    assert grad_diff < 1e-5, grad_diff


def _map_sizes(model, img):
    """The token grid of every stage for an ``img`` ``(H, W)`` input."""
    h, w = img[0] // 4, img[1] // 4
    return [(h // 2**i, w // 2**i) for i in range(len(model.stages))]


# (a) padded maps, (b) pad_small_map, (d) non-square; the comments give
# each stage's token grid -> the padded grid attention runs on
SETTINGS = {
    # (a) 10x10 -> 12x12, 5x5 -> 6x6, both shifted
    'padded': (_swin(3, 40), (40, 40), 12),
    # (a) 12x12 -> 15x15, 6x6 -> 10x10, absolute position embedding
    'padded_abs_pos': (_swin(5, 48, use_abs_pos_embed=True), (48, 48), 20),
    # (b) 8x8 -> 10x10; 4x4 is smaller than the window: 5x5, still shifted
    'pad_small_map': (_swin(5, 32, pad_small_map=True), (32, 32), 8),
    # (b) 8x12 (shift 2); 4x6: one window high, shifted only with
    # pad_small_map, 4x8
    'pad_small_map_one_window': (_swin(4, (32, 48),
                                       pad_small_map=True), (32, 48), 12),
    # (b) four stages as GLID's (32 px units): 16x24 -> 21x28, 8x12 ->
    # 14x14, 4x6 and 2x3 -> 7x7 (a whole 2x3 map in one padded window)
    'pad_small_map_4_stages': (_swin(
        7, (64, 96),
        depths=(2, 2, 2, 2),
        heads=(1, 1, 2, 2),
        embed_dims=8,
        pad_small_map=True), (64, 96), 3),
    # (d) no padding: 8x12 and 4x6, 2x2 windows, both shifted
    'non_square': (_swin(2, (32, 48)), (32, 48), 12),
    # (d) 8x14 -> 8x16 (shift 2); 4x7: one window high without
    # pad_small_map, so not shifted (mmpretrain's rule), 4x8
    'non_square_wide': (_swin(4, (32, 56)), (32, 56), 14),
    # (d) portrait: 14x8 -> 16x8, 7x4 -> 8x4
    'non_square_tall': (_swin(4, (56, 32)), (56, 32), 14),
    # (d) absolute position embedding resized from img_size's 8x12 to
    # 10x16; 10x16 -> 12x18, 5x8 -> 6x9
    'non_square_abs_pos': (_swin(3, (32, 48),
                                 use_abs_pos_embed=True), (40, 64), 20),
}


@pytest.mark.parametrize('name', list(SETTINGS))
def test_nothing_masked_is_the_plain_swin(name):
    """All units visible: the visible path is ``SwinTransformer.forward``,
    padding keys, small-map rule and non-square grids included."""
    cfg, img, _ = SETTINGS[name]
    model = _build(cfg)
    model.eval()
    unit = model.total_stride
    x = torch.randn(2, 3, *img)
    mask = torch.zeros(2, img[0] // unit, img[1] // unit, dtype=torch.bool)
    with torch.no_grad():
        feats = model(x, mask)
        dense = SwinTransformer.forward(model, x)
        # the masked reference with nothing masked is the plain Swin too
        ref = _reference(model, x, mask)
    assert len(feats) == len(dense) == len(model.stages)
    for f, d, r in zip(feats, dense, ref):
        assert f.shape == d.shape
        torch.testing.assert_close(f, d, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(r, d, rtol=1e-5, atol=1e-5)


def test_settings_are_what_they_say():
    """The settings above pad where they say (without padding the tests
    would check nothing new), small maps are no larger than the window and
    non-square inputs are non-square."""
    for name, (cfg, img, _) in SETTINGS.items():
        model = _build(cfg)
        window = model.stages[0].blocks[0].attn.window_size
        sizes = _map_sizes(model, img)
        padded = any(h % window or w % window for h, w in sizes)
        assert padded == (name != 'non_square'), name
        if name.startswith('pad_small_map'):
            assert model.stages[-1].blocks[0].attn.pad_small_map, name
            assert min(min(hw) for hw in sizes) <= window, name
        if name.startswith('non_square'):
            assert img[0] != img[1], name


@pytest.mark.parametrize('name', list(SETTINGS))
def test_masked_equals_the_masked_dense_swin(name):
    """Random masks: outputs at visible positions and the gradients of a
    loss on them equal the masked dense reference's, zeros elsewhere."""
    cfg, img, n_masked = SETTINGS[name]
    model = _build(cfg)
    unit = model.total_stride
    grid = (img[0] // unit, img[1] // unit)
    x = torch.randn(2, 3, *img)
    _check(model, x, _random_mask(2, grid, n_masked, seed=len(name)))


def test_small_map_without_pad_small_map_is_refused_like_the_dense_swin():
    """(b) without ``pad_small_map`` a map smaller than the window is an
    error in both paths (mmpretrain asserts); ours names the argument."""
    model = _build(_swin(5, 32))
    x = torch.randn(1, 3, 32, 32)
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, 0] = True
    with pytest.raises(
            ValueError,
            match=r'feature map \(4, 4\) is smaller than the window 5; '
            r'set pad_small_map=True'):
        model(x, mask)
    with pytest.raises(AssertionError, match='pad_small_map=True'):
        model(x)


@pytest.mark.parametrize(
    'hw, window, shift, qkv_bias, pad_small_map',
    [
        # 8x12 -> 10x15; shifted, the padding rows share Swin's bottom
        # region with the last visible rows (padding 2 < window - shift 3)
        ((8, 12), 5, 2, True, False),
        ((6, 10), 4, 0, False, False),  # padding keys are qkv(0) = 0
        ((4, 6), 5, 2, True, True),  # small map, one window high: 5x10
        ((2, 2), 7, 3, True, True),  # the whole map in one 7x7 window
    ])
def test_padding_keys_are_shift_window_msa_padding(hw, window, shift, qkv_bias,
                                                   pad_small_map):
    """(a), (b) one attention on all tokens of a padded map (2x2 token
    units) against mmpretrain's ``ShiftWindowMSA``, which attends to its
    zero padding: the packing's padding keys make up exactly that."""
    torch.manual_seed(0)
    attn = ShiftWindowMSA(
        8,
        2,
        window,
        shift_size=shift,
        pad_small_map=pad_small_map,
        qkv_bias=qkv_bias).eval()
    torch.nn.init.normal_(attn.w_msa.relative_position_bias_table, std=.5)
    if qkv_bias:
        torch.nn.init.normal_(attn.w_msa.qkv.bias, std=.5)
    grid = (hw[0] // 2, hw[1] // 2)
    units = torch.arange(grid[0] * grid[1]).repeat(2, 1)
    pos = VisiblePositions(units, grid, 2)
    tokens = torch.randn(2, hw[0] * hw[1], 8)
    expected = attn(tokens, hw)
    groups = window_groups(pos, *effective_window(attn, hw))
    assert groups['pad_size'] > 0
    flat = pos.y * hw[1] + pos.x  # unit-major -> row-major
    got = visible_window_attention(attn.w_msa, tokens[torch.arange(2)[:, None],
                                                      flat], groups)
    torch.testing.assert_close(
        got, expected[torch.arange(2)[:, None], flat], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------
# (c) drop path and attention dropout
# ----------------------------------------------------------------------
def test_dropout_settings_in_eval_mode_equal_the_masked_dense_swin():
    """Drop path, attention, projection and embedding dropout are identity
    in eval mode; padded, shifted, masked."""
    model = _build(
        _swin(
            3,
            40,
            attn_drop=0.3,
            drop_path_rate=0.5,
            drop_rate=0.2,
            pad_small_map=True))
    model.eval()
    assert model.stages[1].blocks[1].attn.drop.drop_prob == 0.5
    assert model.stages[0].blocks[0].attn.w_msa.attn_drop.p == 0.3
    x = torch.randn(2, 3, 40, 40)
    _check(model, x, _random_mask(2, (5, 5), 12, seed=1))


@pytest.mark.parametrize('img', [(40, 40), (32, 56)])
def test_drop_path_in_training_drops_what_the_dense_swin_drops(img):
    """Training mode, drop path 0.5: from the same RNG state the visible
    path draws the same per-sample keep / drop of every residual branch
    (``DropPath`` draws ``[B, 1, 1]`` on ``[B, N_visible, C]`` as on ``[B,
    H * W, C]``, in the same order), so it equals the masked dense
    reference, and with nothing masked the plain Swin, in training."""
    model = _build(_swin(3, img, drop_path_rate=0.5))
    assert model.training
    B = 4
    grid = (img[0] // 8, img[1] // 8)
    x = torch.randn(B, 3, *img)
    mask = _random_mask(B, grid, grid[0] * grid[1] // 2, seed=3)
    _check(model, x, mask, seed=5)
    torch.manual_seed(7)
    feats = model(x, torch.zeros_like(mask))
    torch.manual_seed(7)
    dense = SwinTransformer.forward(model, x)
    for f, d in zip(feats, dense):
        torch.testing.assert_close(f, d, rtol=1e-5, atol=1e-5)
    # drop path is on: another draw gives other outputs
    torch.manual_seed(8)
    other = model(x, torch.zeros_like(mask))
    assert not torch.allclose(other[-1], feats[-1])


def test_attention_dropout_in_training_is_the_dense_swins():
    """Training mode, attention dropout 0.5 (and drop path): with nothing
    masked, 2x2 windows and 8 px units, the packed windows are the dense
    window partition (same order, ``K = 4``, no padding), and from the same
    RNG state ``F.scaled_dot_product_attention`` drops the very attention
    weights ``WindowMSA.attn_drop`` drops, so the outputs are the dense
    Swin's in training. In other packings (masked or padded windows) the
    weights are dropped with the same rate and rescaling but drawn over
    ``[M, h, K, K + P]`` instead of ``[nW * B, h, w^2, w^2]``: the same
    distribution per attention weight, other draws."""
    model = _build(
        _swin(2, (32, 48), depths=(1, 1), attn_drop=0.5, drop_path_rate=0.3))
    assert model.training
    x = torch.randn(2, 3, 32, 48)
    mask = torch.zeros(2, 4, 6, dtype=torch.bool)
    torch.manual_seed(11)
    feats = model(x, mask)
    torch.manual_seed(11)
    dense = SwinTransformer.forward(model, x)
    for f, d in zip(feats, dense):
        torch.testing.assert_close(f, d, rtol=1e-5, atol=1e-5)
    model.eval()
    with torch.no_grad():
        plain = model(x, mask)
    # the dropout was on
    assert not torch.allclose(plain[0], feats[0])
