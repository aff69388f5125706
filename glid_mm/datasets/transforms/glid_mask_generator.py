"""Patch masks for GLID pre-training: random, grid and block (Table 7)."""
import math

import numpy as np
from mmcv.transforms import BaseTransform

from glid_mm.registry import TRANSFORMS

# 4x4 Bayer (ordered-dither) matrix: thresholding it at k/16 gives the most
# evenly spread k cells of every 4x4 tile (k=4: a stride-2 lattice, k=8: a
# checkerboard).
_BAYER4 = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9],
                    [15, 7, 13, 5]])


@TRANSFORMS.register_module(scopes=('mmpretrain', ))
class GLIDMaskGenerator(BaseTransform):
    """Mask a fixed number of image patches for GLID pre-training.

    GLID Sec. 4 ("we randomly mask the input images with a mask ratio of
    75%") and Table 7 (grid / block / random strategies, ratios 0.5 / 0.6 /
    0.75). Every image gets exactly ``round(mask_ratio * h * w)`` masked
    patches, so all images of a batch have the same number ``N`` of mask
    queries.

    Strategies (the paper names them without a definition; ours):

    - ``random``: a uniform random subset (MAE).
    - ``grid``: the visible patches form the most regular lattice of the
      required density: patches are ranked by a 4x4 ordered-dither (Bayer)
      pattern at a random offset and the lowest ranks stay visible (ratio
      0.75 keeps one patch per 2x2 cell, 0.5 a checkerboard); ties break at
      random.
    - ``block``: BEiT's blockwise masking: random rectangles (area at least
      ``min_block_patches``, aspect ratio log-uniform in
      ``block_aspect_ratio``) until the count is reached, the last one
      trimmed at random to hit it exactly.

    **Required keys**: ``img`` (``H x W x C``). **Added keys**: ``mask``,
    bool ``[H / p, W / p]`` on the mask-patch grid, True = masked.

    Args:
        mask_patch_size (int): Side ``p`` of a masked patch in pixels; the
            image sides must be multiples of it. Defaults to 32 (Swin's
            output stride, as SimMIM / MixMIM for Swin).
        mask_ratio (float): Fraction of masked patches, in (0, 1). Defaults
            to 0.75.
        strategy (str): ``'random'``, ``'grid'`` or ``'block'``. Defaults to
            ``'random'`` (best in Table 7).
        min_block_patches (int): Smallest block area (``block``). Defaults
            to 4.
        block_aspect_ratio (tuple): Aspect ratio range (``block``).
            Defaults to ``(0.3, 1 / 0.3)``.
    """

    STRATEGIES = ('random', 'grid', 'block')

    def __init__(
        self,
        mask_patch_size: int = 32,
        mask_ratio: float = 0.75,
        strategy: str = 'random',
        min_block_patches: int = 4,
        block_aspect_ratio: tuple = (0.3, 1 / 0.3)
    ) -> None:
        if strategy not in self.STRATEGIES:
            raise ValueError(f'strategy must be one of {self.STRATEGIES}, '
                             f'got {strategy!r}')
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        if mask_patch_size <= 0:
            raise ValueError(
                f'mask_patch_size must be positive, got {mask_patch_size}')
        if min_block_patches < 1:
            raise ValueError('min_block_patches must be >= 1, got '
                             f'{min_block_patches}')
        lo, hi = block_aspect_ratio
        if not 0 < lo <= hi:
            raise ValueError('block_aspect_ratio must be (lo, hi) with '
                             f'0 < lo <= hi, got {block_aspect_ratio}')
        self.mask_patch_size = mask_patch_size
        self.mask_ratio = mask_ratio
        self.strategy = strategy
        self.min_block_patches = min_block_patches
        self.log_aspect = (math.log(lo), math.log(hi))

    def num_masked(self, h: int, w: int) -> int:
        """Masked patches on an ``h x w`` grid (at least 1, at most hw-1)."""
        return int(min(max(round(self.mask_ratio * h * w), 1), h * w - 1))

    def _random(self, h: int, w: int, n: int) -> np.ndarray:
        mask = np.zeros(h * w, dtype=bool)
        mask[np.random.permutation(h * w)[:n]] = True
        return mask.reshape(h, w)

    def _grid(self, h: int, w: int, n: int) -> np.ndarray:
        oy, ox = np.random.randint(0, 4, size=2)
        ys = (np.arange(h)[:, None] + oy) % 4
        xs = (np.arange(w)[None, :] + ox) % 4
        rank = _BAYER4[ys, xs].reshape(-1) + np.random.rand(h * w) * 0.5
        visible = np.argsort(rank, kind='stable')[:h * w - n]
        mask = np.ones(h * w, dtype=bool)
        mask[visible] = False
        return mask.reshape(h, w)

    def _block(self, h: int, w: int, n: int) -> np.ndarray:
        mask = np.zeros((h, w), dtype=bool)
        for _ in range(100):
            remaining = n - int(mask.sum())
            if remaining == 0:
                return mask
            area = np.random.uniform(self.min_block_patches,
                                     max(self.min_block_patches, remaining))
            aspect = math.exp(np.random.uniform(*self.log_aspect))
            bh = int(np.clip(round(math.sqrt(area * aspect)), 1, h))
            bw = int(np.clip(round(math.sqrt(area / aspect)), 1, w))
            top = np.random.randint(0, h - bh + 1)
            left = np.random.randint(0, w - bw + 1)
            block = np.zeros_like(mask)
            block[top:top + bh, left:left + bw] = True
            new = np.flatnonzero(block & ~mask)
            if len(new) > remaining:
                new = np.random.choice(new, remaining, replace=False)
            mask.flat[new] = True
        # rare: fill what 100 blocks did not cover at random
        rest = np.flatnonzero(~mask)
        mask.flat[np.random.choice(rest, n - int(mask.sum()),
                                   replace=False)] = True
        return mask

    def generate(self, h: int, w: int) -> np.ndarray:
        """Mask of an ``h x w`` patch grid, bool, True = masked."""
        return getattr(self, f'_{self.strategy}')(h, w, self.num_masked(h, w))

    def transform(self, results: dict) -> dict:
        H, W = results['img'].shape[:2]
        p = self.mask_patch_size
        if H % p or W % p:
            raise ValueError(f'image size {(H, W)} is not a multiple of '
                             f'mask_patch_size={p}; crop to a multiple first')
        results['mask'] = self.generate(H // p, W // p)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mask_patch_size='
                f'{self.mask_patch_size}, mask_ratio={self.mask_ratio}, '
                f'strategy={self.strategy!r})')
