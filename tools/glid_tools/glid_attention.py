"""Query cross-attention maps of a GLID model over its input (Fig. 4).

GLID Fig. 4 / Sec. 5.4 "Query's cross-attention maps on different tasks":
each decoder block attends to one BiFPN level (coarse to fine, round
robin), so the last ``len(feat_levels)`` blocks show a query's attention at
three scales (1/32, 1/16, 1/8 with the default levels). This module runs any
GLID model of this package (pre-training :class:`GLID` or a fine-tuning
model with ``backbone``, ``neck`` and ``decoder``) on one image and returns
those maps; :func:`attention_picture` draws them over the image.

Queries: fine-tuning models use their own ``[CLS] + e_i`` queries;
the pre-training model uses one mask query per masked patch of a random
75 % mask (as in pre-training), with the mask drawn from a seeded
generator.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def _normalise(model, img: np.ndarray, size: Sequence[int]) -> Tensor:
    """RGB uint8 ``[H, W, 3]`` -> model input ``[1, 3, h, w]``."""
    x = torch.from_numpy(np.ascontiguousarray(img)).float().permute(2, 0, 1)
    x = F.interpolate(
        x[None], size=tuple(size), mode='bilinear', align_corners=False)
    pre = model.data_preprocessor
    mean = getattr(pre, 'mean', None)
    std = getattr(pre, 'std', None)
    if mean is not None and std is not None:
        x = (x - mean.view(1, -1, 1, 1).cpu()) / std.view(1, -1, 1, 1).cpu()
    return x


@torch.no_grad()
def query_attention(model,
                    img: np.ndarray,
                    size: Sequence[int] = (256, 256),
                    seed: int = 0) -> Dict[str, object]:
    """Cross-attention maps of every decoder block for one image.

    Args:
        model: a GLID model (``backbone``, ``neck``, ``decoder``).
        img (np.ndarray): RGB image ``[H, W, 3]``, uint8.
        size (Sequence[int]): ``(h, w)`` the image is resized to; a multiple
            of the model's largest stride (32) and, for the pre-training
            model, of its mask patch size.
        seed (int): Seed of the pre-training mask.

    Returns:
        dict: ``input [1, 3, h, w]``; ``maps``, one ``[Q, H_l, W_l]`` tensor
        per decoder block (averaged over heads); ``levels`` (BiFPN level of
        each block); ``query_names`` (what each query is).
    """
    for part in ('backbone', 'neck', 'decoder'):
        if not hasattr(model, part):
            raise TypeError(f'{type(model).__name__} has no {part}: not a '
                            'GLID model')
    if size[0] % 32 or size[1] % 32:
        raise ValueError(f'size {tuple(size)} must be a multiple of 32')
    model.eval()
    x = _normalise(model, img, size)
    if hasattr(model, 'reconstruct'):  # pre-training GLID
        p = model.head.patch_size
        h, w = size[0] // p, size[1] // p
        g = torch.Generator().manual_seed(seed)
        n = int(round(0.75 * h * w))
        mask = torch.zeros(h * w, dtype=torch.bool)
        mask[torch.randperm(h * w, generator=g)[:n]] = True
        out = model.reconstruct(x, mask.view(1, h, w), return_attn=True)
        maps = [m[0, 1:] for m in out['attn_maps']]  # drop [CLS]
        idx = mask.nonzero()[:, 0].tolist()
        names = [f'mask query @ patch ({i // w}, {i % w})' for i in idx]
    else:
        feats = tuple(model.neck(model.backbone(x)))
        out = model.decoder(feats, return_attn=True)
        maps = [m[0] for m in out['attn_maps']]
        names = [f'query {i}' for i in range(maps[0].shape[0])]
    levels = list(model.decoder.feat_levels)
    block_levels = [
        levels[i % len(levels)] for i in range(model.decoder.num_layers)
    ]
    return dict(input=x, maps=maps, levels=block_levels, query_names=names)


def pick_queries(maps: List[Tensor], num: int) -> List[int]:
    """The ``num`` queries whose last-block attention is most peaked (the
    largest maximum weight): the informative ones to look at."""
    peak = maps[-1].flatten(1).max(1).values
    return peak.argsort(descending=True)[:num].tolist()


def attention_picture(model,
                      img: np.ndarray,
                      out_file: str,
                      size: Sequence[int] = (256, 256),
                      queries: Optional[Sequence[int]] = None,
                      num_queries: int = 4,
                      seed: int = 0) -> Dict[str, object]:
    """Draw ``num_queries`` queries' attention at the last blocks' three
    scales over the image (rows: queries; columns: image, then one column
    per scale) and save it to ``out_file`` (PNG).

    Returns:
        dict: what :func:`query_attention` returns plus ``queries``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    res = query_attention(model, img, size, seed)
    maps, levels = res['maps'], res['levels']
    k = len(model.decoder.feat_levels)
    last = list(range(len(maps) - k, len(maps)))
    if queries is None:
        queries = pick_queries(maps, num_queries)
    bad = [q for q in queries if not 0 <= q < maps[0].shape[0]]
    if bad:
        raise ValueError(f'query indices {bad} out of range (the model has '
                         f'{maps[0].shape[0]} queries)')
    shown = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(img)).float().permute(2, 0,
                                                                    1)[None],
        size=tuple(size),
        mode='bilinear',
        align_corners=False)[0].permute(1, 2, 0).clamp(0, 255).numpy() / 255
    fig = Figure(figsize=(2.2 * (k + 1), 2.2 * len(queries)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(queries), k + 1, squeeze=False)
    for r, q in enumerate(queries):
        axes[r, 0].imshow(shown)
        axes[r, 0].set_title(res['query_names'][q], fontsize=7)
        for c, b in enumerate(last, start=1):
            m = maps[b][q][None, None]
            m = F.interpolate(
                m, size=tuple(size), mode='bilinear',
                align_corners=False)[0, 0].numpy()
            axes[r, c].imshow(shown)
            axes[r, c].imshow(m, cmap='jet', alpha=0.5)
            stride = 2**(levels[b] + 2)
            axes[r, c].set_title(f'block {b}, 1/{stride} level', fontsize=7)
    for ax in axes.flat:
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    res['queries'] = list(queries)
    return res
