"""Crop geometry and sine-cosine embeddings for M3I's decoder queries.

M3I (Fig. 2) follows Siamese Image Modeling: the position embedding of each
target-view patch is computed in the coordinate frame of the *input* view
(origin = input view's top-left corner, unit = one input-view patch), so that
a ``<mask>`` query can be matched with the target patch it must predict.

Conventions used throughout:

* A crop box is ``(x0, y0, w, h)`` in pixels of the original image; the view
  covers columns ``[x0, x0 + w)`` and rows ``[y0, y0 + h)``, resized to the
  view size and split into a ``(gh, gw)`` patch grid.
* A horizontal flip is applied to the resized crop.
* Coordinates are ``(row, col)`` in input-view patch-index units: patch
  ``(r, c)`` of the input view itself sits at ``(r, c)``.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def _as_grid(grid_size) -> Tuple[int, int]:
    if isinstance(grid_size, int):
        return grid_size, grid_size
    grid = tuple(int(g) for g in grid_size)
    if len(grid) != 2:
        raise ValueError(f'grid_size must be int or (h, w), got {grid_size}')
    return grid


def grid_coords(grid_size, device=None) -> Tensor:
    """Row-major patch-index coordinates ``[gh * gw, 2]`` as ``(row, col)``."""
    gh, gw = _as_grid(grid_size)
    rows = torch.arange(gh, dtype=torch.float32, device=device)
    cols = torch.arange(gw, dtype=torch.float32, device=device)
    rr, cc = torch.meshgrid(rows, cols, indexing='ij')
    return torch.stack([rr.flatten(), cc.flatten()], dim=-1)


def _check_boxes(name: str, boxes: Tensor, flips: Tensor) -> None:
    if boxes.dim() != 2 or boxes.size(-1) != 4:
        raise ValueError(f'{name} boxes must be [B, 4] (x0, y0, w, h), got '
                         f'shape {tuple(boxes.shape)}')
    if flips.shape != boxes.shape[:1]:
        raise ValueError(f'{name} flips must be [B], got shape '
                         f'{tuple(flips.shape)} for {boxes.size(0)} boxes')
    if bool((boxes[:, 2:] <= 0).any()):
        raise ValueError(f'{name} boxes need positive w and h, got '
                         f'{boxes.tolist()}')


def relative_patch_coords(input_boxes: Tensor, input_flips: Tensor,
                          target_boxes: Tensor, target_flips: Tensor,
                          grid_size) -> Tuple[Tensor, Tensor]:
    """Centres of the target view's patches in input-view patch units.

    Both views share the patch grid ``grid_size`` (same view size).

    Args:
        input_boxes (Tensor): ``[B, 4]`` input-view crop boxes.
        input_flips (Tensor): ``[B]`` bool, input view flipped horizontally.
        target_boxes (Tensor): ``[B, 4]`` target-view crop boxes.
        target_flips (Tensor): ``[B]`` bool, target view flipped.
        grid_size (int | tuple): Patch grid ``(gh, gw)`` of both views.

    Returns:
        tuple: ``coords [B, gh * gw, 2]`` (row, col) of every target patch
        (row-major over the target grid) relative to the input view's
        top-left origin, and ``scales [B, 2]``: the target patch's height and
        width in input-view patches (``h_t / h_in``, ``w_t / w_in``).
    """
    _check_boxes('input', input_boxes, input_flips)
    _check_boxes('target', target_boxes, target_flips)
    gh, gw = _as_grid(grid_size)
    inp = input_boxes.float()
    tgt = target_boxes.float()
    base = grid_coords((gh, gw), device=inp.device)  # [L, 2]
    # target patch centres in original-image pixels
    row_px = tgt[:, None, 1] + (base[None, :, 0] + 0.5) * tgt[:, None, 3] / gh
    col_t = torch.where(target_flips.bool()[:, None],
                        gw - 0.5 - base[None, :, 1], base[None, :, 1] + 0.5)
    col_px = tgt[:, None, 0] + col_t * tgt[:, None, 2] / gw
    # into the input view's patch-index frame
    row = (row_px - inp[:, None, 1]) / (inp[:, None, 3] / gh) - 0.5
    col = (col_px - inp[:, None, 0]) / (inp[:, None, 2] / gw)
    col = torch.where(input_flips.bool()[:, None], gw - col, col) - 0.5
    scales = tgt[:, 2:].flip(-1) / inp[:, 2:].flip(-1)  # (h, w) ratios
    return torch.stack([row, col], dim=-1), scales


def sincos_2d(coords: Tensor,
              embed_dims: int,
              temperature: float = 10000.) -> Tensor:
    """Sine-cosine embedding of continuous ``(row, col)`` coordinates.

    Layout ``[sin(row w), cos(row w), sin(col w), cos(col w)]``: on a square
    grid of row-major tokens this reproduces mmpretrain's
    ``build_2d_sincos_position_embedding`` exactly (its first half follows
    the token's row there).

    Args:
        coords (Tensor): ``[..., 2]`` as ``(row, col)``.
        embed_dims (int): Output size, a multiple of 4.
        temperature (float): Frequency base. Defaults to 10000.

    Returns:
        Tensor: ``[..., embed_dims]``.
    """
    if embed_dims % 4:
        raise ValueError(f'embed_dims must be a multiple of 4, got '
                         f'{embed_dims}')
    pos_dim = embed_dims // 4
    omega = torch.arange(
        pos_dim, dtype=torch.float32, device=coords.device) / pos_dim
    omega = 1. / (temperature**omega)
    out_row = coords[..., 0:1].float() * omega
    out_col = coords[..., 1:2].float() * omega
    return torch.cat(
        [out_row.sin(),
         out_row.cos(),
         out_col.sin(),
         out_col.cos()], dim=-1)


def query_position_features(coords: Tensor, scales: Tensor,
                            embed_dims: int) -> Tensor:
    """SiameseIM's relative query features: position and scale terms.

    ``concat(sincos(row, col), sincos(10 log s_h, 10 log s_w))`` as in
    SiameseIM's ``get_2d_sincos_pos_embed_relative``; a linear layer of the
    decoder maps the ``2 * embed_dims`` features to ``embed_dims``.

    Args:
        coords (Tensor): ``[B, Q, 2]`` query coordinates (row, col).
        scales (Tensor): ``[B, 2]`` target/input patch size ratio (h, w).
        embed_dims (int): Size of each half.

    Returns:
        Tensor: ``[B, Q, 2 * embed_dims]``.
    """
    if bool((scales <= 0).any()):
        raise ValueError(f'scales must be positive, got {scales.tolist()}')
    pos = sincos_2d(coords, embed_dims)
    scale = sincos_2d(10. * scales.float().log(), embed_dims)
    return torch.cat([pos, scale[:, None].expand_as(pos)], dim=-1)


def gather_tokens(tokens: Tensor, index: Tensor) -> Tensor:
    """``tokens [B, L, C]`` at ``index [B, K]`` -> ``[B, K, C]``."""
    return tokens.gather(1, index[..., None].expand(-1, -1, tokens.size(-1)))


def boxes_from_samples(data_samples: Sequence,
                       device=None) -> Tuple[Tensor, Tensor]:
    """Stack ``m3i_boxes [2, 4]`` / ``m3i_flips [2]`` of each data sample.

    Returns:
        tuple: ``boxes [B, 2, 4]`` and ``flips [B, 2]`` (index 0 = input
        view, 1 = target view), as written by :class:`M3ITwoViews`.
    """
    boxes, flips = [], []
    for i, sample in enumerate(data_samples):
        if 'm3i_boxes' not in sample or 'm3i_flips' not in sample:
            raise KeyError(
                f'data sample {i} has no m3i_boxes / m3i_flips: use the '
                "M3ITwoViews transform and PackInputs(algorithm_keys=("
                "'m3i_boxes', 'm3i_flips'))")
        boxes.append(torch.as_tensor(sample.m3i_boxes, dtype=torch.float32))
        flips.append(torch.as_tensor(sample.m3i_flips, dtype=torch.bool))
    return torch.stack(boxes).to(device), torch.stack(flips).to(device)
