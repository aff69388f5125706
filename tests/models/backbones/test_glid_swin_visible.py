"""The visible-token GLID Swin against a dense reference (GLID Sec. 3.1).

The reference runs mmpretrain's Swin blocks on the full token grid (pad,
cyclic shift, window partition, Swin's shift mask) and additionally masks
every key that is not visible, so each visible token sees exactly the
visible tokens of its (shifted) window; 2x2 merges stay inside units. Its
outputs at visible positions, and the parameter gradients of a loss on
them, must equal the visible-token encoder's.
"""
import pytest
import torch
import torch.nn.functional as F

import glid_mm  # noqa: F401
from glid_mm.registry import build_model


def _swin(window, img_size, **kwargs):
    return dict(
        type='GLIDSwinTransformer',
        arch=dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]),
        img_size=img_size,
        stage_cfgs=dict(block_cfgs=dict(window_size=window)),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0,
        **kwargs)


def _random_mask(B, grid, n_masked, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(B, grid * grid, dtype=torch.bool)
    for b in range(B):
        mask[b, torch.randperm(grid * grid, generator=g)[:n_masked]] = True
    return mask.view(B, grid, grid)


def _ref_block(block, x, hw, vis):
    """SwinBlock.forward with non-visible keys masked out."""
    attn = block.attn
    B, L, C = x.shape
    H, W = hw
    w, s = attn.window_size, attn.shift_size
    if min(H, W) == w:
        s = 0
    identity = x
    q = block.norm1(x).view(B, H, W, C)
    pad_b, pad_r = (w - H % w) % w, (w - W % w) % w
    q = F.pad(q, (0, 0, 0, pad_r, 0, pad_b))
    v = F.pad(vis.float(), (0, pad_r, 0, pad_b))
    Hp, Wp = q.shape[1:3]
    if s:
        q = torch.roll(q, (-s, -s), (1, 2))
        v = torch.roll(v, (-s, -s), (1, 2))
    shift_mask = attn.get_attn_mask((Hp, Wp), w, s, device=x.device)
    windows = attn.window_partition(q, w).view(-1, w * w, C)
    vwin = attn.window_partition(v[..., None], w).view(-1, w * w)
    mask = (1 - vwin)[:, None, :].expand(-1, w * w, -1) * -1e9
    if shift_mask is not None:
        mask = mask + shift_mask.repeat(B, 1, 1)
    out = attn.w_msa(windows, mask=mask).view(-1, w, w, C)
    out = attn.window_reverse(out, Hp, Wp, w)
    if s:
        out = torch.roll(out, (s, s), (1, 2))
    out = out[:, :H, :W].reshape(B, H * W, C)
    x = identity + attn.drop(out)
    return block.ffn(block.norm2(x), identity=x)


def _reference(model, x, mask):
    """Dense Swin with attention restricted to visible tokens."""
    tokens, hw = model.patch_embed(x)
    if model.use_abs_pos_embed:
        tokens = tokens + model.absolute_pos_embed
    unit_tokens = hw[0] // mask.shape[1]
    outs = []
    for i, stage in enumerate(model.stages):
        s = unit_tokens // 2**i
        vis = (~mask).repeat_interleave(s, 1).repeat_interleave(s, 2)
        for block in stage.blocks:
            tokens = _ref_block(block, tokens, hw, vis)
        out = getattr(model, f'norm{i}')(tokens)
        outs.append(out.view(-1, *hw, out.shape[-1]).permute(0, 3, 1, 2))
        if stage.downsample is not None:
            tokens, hw = stage.downsample(tokens, hw)
    return outs


def _level_vis(mask, feat):
    s = feat.shape[-1] // mask.shape[-1]
    return (~mask).repeat_interleave(s, 1).repeat_interleave(s, 2)


@pytest.mark.parametrize('window,img_size,n_masked,abs_pos', [
    (6, 192, 27, False),
    (7, 224, 37, False),
    (6, 192, 20, True),
])
@pytest.mark.slow
def test_visible_encoder_equals_masked_dense_reference(window, img_size,
                                                       n_masked, abs_pos):
    torch.manual_seed(0)
    model = build_model(_swin(window, img_size, use_abs_pos_embed=abs_pos))
    model.init_weights()
    if abs_pos:
        with torch.no_grad():
            model.absolute_pos_embed.normal_(0, 0.5)
    grid = img_size // 32
    B = 2
    x = torch.randn(B, 3, img_size, img_size)
    mask = _random_mask(B, grid, n_masked, seed=window)
    feats = model(x, mask)
    weights = [torch.randn_like(f) for f in feats]

    def loss_of(outs):
        return sum((o * w * _level_vis(mask, o)[:, None]).sum()
                   for o, w in zip(outs, weights))

    loss_of(feats).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref = _reference(model, x, mask)
    loss_of(ref).backward()
    for f, r in zip(feats, ref):
        vis = _level_vis(mask, f)[:, None].expand_as(f)
        assert torch.isfinite(f).all()
        torch.testing.assert_close(f[vis], r[vis], atol=1e-5, rtol=1e-5)
        assert (f[~vis] == 0).all()
    for name, p in model.named_parameters():
        scale = p.grad.abs().max().clamp(min=1.)
        torch.testing.assert_close(
            grads[name] / scale,
            p.grad / scale,
            atol=1e-5,
            rtol=1e-5,
            msg=lambda m, n=name: f'{n}: {m}')


def test_windows_without_visible_tokens_give_no_nan():
    """One visible unit out of 36: most windows are empty."""
    torch.manual_seed(0)
    model = build_model(_swin(6, 192))
    x = torch.randn(1, 3, 192, 192)
    mask = torch.ones(1, 6, 6, dtype=torch.bool)
    mask[0, 2, 3] = False
    feats = model(x, mask)
    sum(f.sum() for f in feats).backward()
    assert all(torch.isfinite(f).all() for f in feats)
    assert all(
        torch.isfinite(p.grad).all() for p in model.parameters()
        if p.grad is not None)


def test_state_dict_keys_equal_the_dense_swin():
    swin = _swin(6, 192)
    visible = build_model(swin)
    dense = build_model(dict(swin, type='mmpretrain.SwinTransformer'))
    assert set(visible.state_dict()) == set(dense.state_dict())
    masktoken = build_model(dict(swin, mask_mode='mask_token'))
    assert set(masktoken.state_dict()) - set(dense.state_dict()) == {
        'mask_token'
    }


def test_unmasked_forward_is_the_plain_swin():
    torch.manual_seed(0)
    swin = _swin(6, 192)
    visible = build_model(swin)
    dense = build_model(dict(swin, type='mmpretrain.SwinTransformer'))
    dense.load_state_dict(visible.state_dict())
    x = torch.randn(1, 3, 192, 192)
    for a, b in zip(visible(x), dense(x)):
        torch.testing.assert_close(a, b)


def test_bad_masks():
    model = build_model(_swin(6, 192))
    x = torch.randn(2, 3, 192, 192)
    # 16 px units: finer than the encoder's total stride of 32 px
    with pytest.raises(ValueError, match='total stride 32'):
        model(x, torch.zeros(2, 12, 12, dtype=torch.bool))
    mask = _random_mask(2, 6, 27, seed=0)
    mask[1, 0, 0] = ~mask[1, 0, 0]
    with pytest.raises(ValueError, match='same, non-zero number of visible'):
        model(x, mask)
    with pytest.raises(ValueError, match='does not tile'):
        model(x, torch.zeros(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask_mode must be one of"):
        build_model(_swin(6, 192, mask_mode='dense'))
