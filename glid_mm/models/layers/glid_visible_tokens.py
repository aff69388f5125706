"""Swin on the visible tokens only: token positions, windows, merging.

GLID Sec. 3.1: "the visual encoder is utilized to only process the visible
tokens following MAE". A hierarchical Swin needs three things to run on a
subset of its token grid; the semantics are those of GreenMIM (Huang et al.,
NeurIPS 2022), implemented here with our own packing:

1. Mask units as large as a multiple of the encoder's total stride (32 px for
   a 4-stage Swin), so every 2x2 patch merge falls inside one visible unit
   (:func:`merge_visible`) and a unit stays whole down to the last stage.
2. Window attention (regular and shifted) in which each visible token attends
   only to the visible tokens of its own window, with the relative position
   bias of their true grid coordinates (:func:`visible_window_attention`).
   The windows are packed: visible tokens are sorted by window, each
   non-empty window is padded to the largest visible count ``K`` of the
   batch and padded keys are masked. Windows with no visible token do not
   exist in the packing, so nothing is computed for them and no NaN can
   arise; every packed window has at least one real key.
   Where the map is not a whole number of windows (and with
   ``pad_small_map``), mmpretrain's ``ShiftWindowMSA`` zero-pads the
   normalised map at the bottom / right, and those zero tokens are keys of
   their windows (key ``qkv(0)``, the projection bias). They are image
   border, not masked content, so the packing keeps them as extra keys of
   the windows they fall in: with nothing masked the encoder is exactly the
   dense Swin, padded or not.
3. Per-token layers (LayerNorm, the QKV / output projections, the MLP) run on
   the ``[B, N_visible, C]`` tokens directly.

Tokens are kept unit-major: visible units in row-major order of the unit
grid, and the ``t x t`` tokens of each unit row-major inside it. This module
holds functions and a small position record, not a registered component; the
registered encoder is :class:`glid_mm.models.GLIDSwinTransformer`.
"""
import math
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint


class VisiblePositions:
    """Grid positions of the visible tokens of one Swin stage.

    Args:
        units (Tensor): ``[B, n]`` row-major indices of the visible mask
            units on the ``unit_grid``, ascending in each row.
        unit_grid (tuple): ``(U_h, U_w)`` mask units over the image.
        tokens_per_unit (int): Side ``t`` of a unit in tokens at this stage.

    Attributes:
        y, x (Tensor): ``[B, n * t * t]`` token coordinates on the stage's
            ``(U_h * t, U_w * t)`` grid, in the unit-major order.
        hw (tuple): The stage's full grid size.
    """

    def __init__(self, units: Tensor, unit_grid: Tuple[int, int],
                 tokens_per_unit: int) -> None:
        self.units = units
        self.unit_grid = tuple(unit_grid)
        self.t = int(tokens_per_unit)
        t = self.t
        uh, uw = self.unit_grid
        offs = torch.arange(t, device=units.device)
        ty = offs.repeat_interleave(t)
        tx = offs.repeat(t)
        uy = torch.div(units, uw, rounding_mode='floor')
        ux = units % uw
        self.y = (uy[..., None] * t + ty).flatten(1)
        self.x = (ux[..., None] * t + tx).flatten(1)
        self.hw = (uh * t, uw * t)

    def merged(self) -> 'VisiblePositions':
        """Positions after a 2x2 patch merge."""
        if self.t % 2:
            raise ValueError(f'a mask unit is {self.t} tokens wide at this '
                             'stage; 2x2 patch merging needs an even width')
        return VisiblePositions(self.units, self.unit_grid, self.t // 2)


def effective_window(attn: nn.Module, hw: Tuple[int, int]) -> Tuple[int, int]:
    """``(window, shift)`` that mmpretrain's ``ShiftWindowMSA`` uses on a
    grid ``hw``: no shift when the map is exactly one window (unless
    ``pad_small_map``), an error when it is smaller (unless
    ``pad_small_map``, then the map is padded to the window)."""
    w, s = attn.window_size, attn.shift_size
    if min(hw) == w and not attn.pad_small_map:
        s = 0
    elif min(hw) < w and not attn.pad_small_map:
        raise ValueError(f'feature map {tuple(hw)} is smaller than the window '
                         f'{w}; set pad_small_map=True or a smaller window')
    return w, s


def window_groups(pos: VisiblePositions, window: int,
                  shift: int) -> Dict[str, object]:
    """Pack the visible tokens of a batch into their (shifted) windows.

    Two tokens share a group when they lie in the same window of the cyclic
    shifted grid and on the same side of the wrap-around (the regions that
    Swin's shifted-window attention mask keeps apart). Grouping depends only
    on positions, so one packing serves every block of a stage with the
    same shift.

    When the ``(H, W)`` map is padded to whole windows ``(H_p, W_p)`` (a
    side that is not a multiple of ``window``, or a map smaller than the
    window with ``pad_small_map``), the padding positions of each group's
    window and region are keys of the group as well, as in the dense
    ``ShiftWindowMSA``, which pads the normalised map with zeros and does
    not mask them; they are never queries.

    Returns:
        dict: ``slot`` ``[B * N]`` (packed row of each token, flat order),
        ``num_groups`` ``M``, ``size`` ``K`` (largest group), ``key_valid``
        ``[M, K]`` bool and ``bias_index`` ``[M, K, K]`` (row of the relative
        position bias table for each query / key pair) of the visible
        tokens; ``pad_size`` ``P`` (most padding keys of a group, 0 when the
        map is not padded), ``pad_valid`` ``[M, P]`` bool and
        ``pad_bias_index`` ``[M, K, P]`` (bias rows of the visible queries
        against the padding keys; None when ``P`` is 0).
    """
    B, N = pos.y.shape
    H, W = pos.hw
    Hp, Wp = math.ceil(H / window) * window, math.ceil(W / window) * window
    nwy, nwx = Hp // window, Wp // window
    device = pos.y.device

    def group_id(y: Tensor, x: Tensor, batch: Tensor) -> Tensor:
        # window of the cyclic shifted (padded) grid, then the side of the
        # wrap-around in each direction
        yr, xr = (y - shift) % Hp, (x - shift) % Wp
        wrap = (y < shift).long() * 2 + (x < shift).long()
        win = (batch * nwy +
               torch.div(yr, window, rounding_mode='floor')) * nwx + torch.div(
                   xr, window, rounding_mode='floor')
        return win * 4 + wrap

    batch = torch.arange(B, device=device)[:, None]
    gid = group_id(pos.y, pos.x, batch).flatten()
    sorted_gid, order = torch.sort(gid, stable=True)
    ids, counts = torch.unique_consecutive(sorted_gid, return_counts=True)
    M, K = counts.numel(), int(counts.max())
    slot, key_valid, ys, xs = _pack(order, counts, K, pos.y.flatten(),
                                    pos.x.flatten())
    dy = ys[:, :, None] - ys[:, None, :] + window - 1
    dx = xs[:, :, None] - xs[:, None, :] + window - 1
    pair_ok = key_valid[:, :, None] & key_valid[:, None, :]
    # pairs with a padded slot may fall outside the table: point them at 0
    # (masked keys, discarded queries)
    bias_index = torch.where(pair_ok, dy * (2 * window - 1) + dx, 0)
    groups = dict(
        slot=slot,
        num_groups=M,
        size=K,
        key_valid=key_valid,
        bias_index=bias_index,
        pad_size=0,
        pad_valid=None,
        pad_bias_index=None)
    if (Hp, Wp) == (H, W):
        return groups
    # the padding positions of every image, kept where their group exists
    # (a group with no visible token has no query to attend to them)
    py, px = torch.meshgrid(
        torch.arange(Hp, device=device),
        torch.arange(Wp, device=device),
        indexing='ij')
    outside = (py >= H) | (px >= W)
    py, px = py[outside], px[outside]
    pgid = group_id(py, px, batch).flatten()
    where = torch.searchsorted(ids, pgid).clamp(max=M - 1)
    hit = ids[where] == pgid
    if not hit.any():
        return groups
    pgroup = where[hit]
    porder = torch.sort(pgroup, stable=True)[1]
    pcounts = torch.bincount(pgroup, minlength=M)
    P = int(pcounts.max())
    _, pad_valid, pys, pxs = _pack(porder, pcounts, P,
                                   py.repeat(B)[hit],
                                   px.repeat(B)[hit])
    dy = ys[:, :, None] - pys[:, None, :] + window - 1
    dx = xs[:, :, None] - pxs[:, None, :] + window - 1
    pair_ok = key_valid[:, :, None] & pad_valid[:, None, :]
    groups.update(
        pad_size=P,
        pad_valid=pad_valid,
        pad_bias_index=torch.where(pair_ok,
                                   dy * (2 * window - 1) + dx, 0))
    return groups


def _pack(order: Tensor, counts: Tensor, size: int, y: Tensor,
          x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Rows of items in ``M = len(counts)`` groups of ``size`` slots.

    ``order`` sorts the items by group (stable), ``counts`` is the items of
    each group. Returns the packed row ``slot`` of each item (input order),
    ``valid`` ``[M, size]`` and the coordinates ``y``, ``x`` as ``[M,
    size]`` (0 at empty slots).
    """
    M = counts.numel()
    device = order.device
    starts = torch.cumsum(counts, 0) - counts
    group = torch.repeat_interleave(torch.arange(M, device=device), counts)
    rank = torch.arange(order.numel(), device=device) - starts[group]
    slot = torch.empty_like(order)
    slot[order] = group * size + rank
    valid = torch.zeros(M * size, dtype=torch.bool, device=device)
    valid[slot] = True
    ys = torch.zeros(M * size, dtype=torch.long, device=device)
    xs = torch.zeros_like(ys)
    ys[slot] = y
    xs[slot] = x
    return (slot, valid.view(M, size), ys.view(M, size), xs.view(M, size))


def visible_window_attention(w_msa: nn.Module, x: Tensor,
                             groups: Dict[str, object]) -> Tensor:
    """mmpretrain ``WindowMSA`` over packed windows of visible tokens.

    The same parameters and arithmetic as ``WindowMSA.forward`` (QKV
    projection, ``scale``, relative position bias, softmax, output
    projection); attention through ``F.scaled_dot_product_attention`` with
    the bias and the padding as an additive mask. The keys are the group's
    visible tokens ``[M, h, K, d]`` and, on a padded map, its ``P`` padding
    positions, whose key and value are ``qkv(0)`` as for the zeros that
    ``ShiftWindowMSA`` pads the normalised map with.

    In training, ``w_msa.attn_drop.p`` drops attention weights after the
    softmax and rescales by ``1 / (1 - p)``, as ``WindowMSA.attn_drop``
    does; the mask is drawn over ``[M, h, K, K + P]`` instead of the dense
    ``[nW * B, h, w^2, w^2]``, so each weight has the dense distribution but
    not the same draw (the same draw where the packing is the dense window
    partition: nothing masked, no padding, units of whole windows).

    Args:
        w_msa (nn.Module): The block's ``attn.w_msa`` (``WindowMSA``).
        x (Tensor): ``[B, N, C]`` visible tokens (after ``norm1``).
        groups (dict): :func:`window_groups` of these tokens.

    Returns:
        Tensor: ``[B, N, C]``.
    """
    B, N, C = x.shape
    heads = w_msa.num_heads
    M, K = groups['num_groups'], groups['size']
    slot = groups['slot']
    qkv = w_msa.qkv(x).reshape(B * N, 3 * C)
    packed = qkv.new_zeros(M * K, 3 * C).index_copy(0, slot, qkv)
    q, k, v = packed.view(M, K, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    table = w_msa.relative_position_bias_table
    bias = table[groups['bias_index']].permute(0, 3, 1, 2)  # [M, h, K, K]
    bias = bias.masked_fill(~groups['key_valid'][:, None, None, :],
                            float('-inf'))
    P = groups.get('pad_size', 0)
    if P:
        # the dense Swin's zero padding (after norm1) as keys: each has
        # key / value qkv(0) and the bias of its own position
        _, k_pad, v_pad = w_msa.qkv(x.new_zeros(1, C)).view(
            3, heads, 1, C // heads)
        k = torch.cat([k, k_pad.expand(M, -1, P, -1)], 2)
        v = torch.cat([v, v_pad.expand(M, -1, P, -1)], 2)
        pad_bias = table[groups['pad_bias_index']].permute(0, 3, 1, 2)
        pad_bias = pad_bias.masked_fill(~groups['pad_valid'][:, None, None, :],
                                        float('-inf'))
        bias = torch.cat([bias, pad_bias], 3)  # [M, h, K, K + P]
    drop = w_msa.attn_drop.p if w_msa.training else 0.0
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias.to(q.dtype), dropout_p=drop, scale=w_msa.scale)
    out = out.transpose(1, 2).reshape(M * K, C)[slot].view(B, N, C)
    return w_msa.proj_drop(w_msa.proj(out))


def visible_swin_block(block: nn.Module, x: Tensor,
                       groups: Dict[str, object]) -> Tensor:
    """mmpretrain ``SwinBlock.forward`` on visible tokens ``[B, N, C]``."""

    def inner(x: Tensor) -> Tensor:
        h = visible_window_attention(block.attn.w_msa, block.norm1(x), groups)
        x = x + block.attn.drop(h)
        return block.ffn(block.norm2(x), identity=x)

    if block.with_cp and x.requires_grad:
        return checkpoint(inner, x, use_reentrant=False)
    return inner(x)


def merge_visible(merging: nn.Module, x: Tensor,
                  pos: VisiblePositions) -> Tensor:
    """Swin's ``PatchMerging`` (2x2, stride 2) inside visible units.

    The 2x2 group of each output token is concatenated channel-major, as
    ``nn.Unfold`` orders it (``c * 4 + ky * 2 + kx``), so the reduction
    layer's weights mean the same as in the dense Swin.

    Args:
        x (Tensor): ``[B, n * t * t, C]`` tokens at positions ``pos``.

    Returns:
        Tensor: ``[B, n * (t / 2)^2, C_out]``.
    """
    B, N, C = x.shape
    t = pos.t
    if t % 2:
        raise ValueError(f'a mask unit is {t} tokens wide here; 2x2 patch '
                         'merging needs an even width')
    n, h = N // (t * t), t // 2
    x = x.view(B, n, h, 2, h, 2, C).permute(0, 1, 2, 4, 6, 3, 5)
    x = x.reshape(B, n * h * h, 4 * C)
    if getattr(merging, 'use_post_norm', False):  # mmpretrain's variant
        x = merging.reduction(x)
        return merging.norm(x) if merging.norm else x
    x = merging.norm(x) if merging.norm else x
    return merging.reduction(x)


def scatter_visible(x: Tensor, pos: VisiblePositions) -> Tensor:
    """Visible tokens ``[B, n * t * t, C]`` -> map ``[B, C, H, W]`` with
    zeros at the masked positions."""
    B, N, C = x.shape
    t = pos.t
    uh, uw = pos.unit_grid
    n = pos.units.shape[1]
    idx = pos.units[:, :, None, None].expand(-1, -1, t * t, C)
    dense = x.new_zeros(B, uh * uw, t * t, C).scatter(1, idx,
                                                      x.view(B, n, t * t, C))
    dense = dense.view(B, uh, uw, t, t, C).permute(0, 5, 1, 3, 2, 4)
    return dense.reshape(B, C, uh * t, uw * t)
