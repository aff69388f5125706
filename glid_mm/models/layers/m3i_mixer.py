"""Patch-wise mixing of two images' input views (M3I, Sec. 3.4)."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmpretrain', ))
class M3IMixer:
    """Mix each input view with a partner image's view, patch by patch.

    M3I Pre-training (Sec. 3.4, Fig. 2) pairs image ``i`` of a mini-batch with
    image ``j = sigma(i)`` for a random permutation ``sigma`` and mixes their
    input views with a binary mask that is constant on ``p x p`` patches
    (``p = 16``, the ViT patch, so that every encoder token comes from one
    image). The paper writes ``I_mix = m * I_i + (1 - m) * I_j``; we return
    the complement ``mask = 1 - m``, i.e. ``mask = 1`` marks the patches taken
    from the partner ``j`` (these are the "masked" patches of image ``i``, as
    in MAE's ``1 = removed`` convention)::

        mixed[k] = (1 - mask[k]) * inputs[k] + mask[k] * inputs[sigma[k]]

    Choices the paper leaves open (ours, documented):

    * Exactly ``round(mix_ratio * h * w)`` patches per sample come from the
      partner, so every sample has the same number of visible / hidden
      tokens and the decoder works on rectangular tensors. MixMIM, whose
      mixing M3I builds on, uses ratio 0.5, our default.
    * ``sigma`` has no fixed point by default (a uniformly random
      derangement, drawn by rejection): an image mixed with itself would show
      the intra-view target to the encoder. ``allow_self_pairs=True`` samples
      any permutation, as a plain shuffle does.

    Args:
        patch_size (int): Side ``p`` of the mixing patches in pixels. Defaults
            to 16 (ViT-B/16's patch).
        mix_ratio (float): Fraction of patches taken from the partner, in
            ``(0, 1)``. Defaults to 0.5.
        allow_self_pairs (bool): Allow ``sigma(i) == i``. Defaults to False.

    Call:
        inputs (Tensor): Input views ``[B, C, H, W]``; ``H`` and ``W`` must be
            multiples of ``patch_size``.
        generator (torch.Generator, optional): Random source for the
            permutation and the mask; the global one if None.

    Returns:
        tuple: ``mixed [B, C, H, W]``; ``mask [B, H/p, W/p]`` (bool,
        ``True`` = pixel patch from the partner ``sigma[k]``); ``sigma [B]``
        (long, a permutation of ``0..B-1``).
    """

    def __init__(self,
                 patch_size: int = 16,
                 mix_ratio: float = 0.5,
                 allow_self_pairs: bool = False) -> None:
        if not isinstance(patch_size, int) or patch_size <= 0:
            raise ValueError(
                f'M3IMixer: patch_size must be a positive int, got '
                f'patch_size={patch_size!r}')
        if not 0. < float(mix_ratio) < 1.:
            raise ValueError(f'M3IMixer: mix_ratio must lie in (0, 1), got '
                             f'mix_ratio={mix_ratio!r}')
        self.patch_size = patch_size
        self.mix_ratio = float(mix_ratio)
        self.allow_self_pairs = bool(allow_self_pairs)

    def num_mixed(self, num_patches: int) -> int:
        """Number of partner patches out of ``num_patches``."""
        num = int(round(self.mix_ratio * num_patches))
        if not 0 < num < num_patches:
            raise ValueError(
                f'M3IMixer: mix_ratio={self.mix_ratio} takes {num} of '
                f'{num_patches} patches from the partner; need at least one '
                'patch from each image (raise the image size or change '
                'mix_ratio)')
        return num

    def permutation(self,
                    batch_size: int,
                    generator: Optional[torch.Generator] = None) -> Tensor:
        """Random pairing ``sigma [B]`` (derangement unless self pairs)."""
        if self.allow_self_pairs:
            return torch.randperm(batch_size, generator=generator)
        if batch_size < 2:
            raise ValueError(
                f'M3IMixer: batch size {batch_size} cannot pair an image '
                'with a different one; use batch size >= 2 or '
                'allow_self_pairs=True')
        arange = torch.arange(batch_size)
        while True:  # P(derangement) >= 1/3 for B >= 2, ~1/e for large B
            sigma = torch.randperm(batch_size, generator=generator)
            if not bool((sigma == arange).any()):
                return sigma

    def patch_mask(self,
                   batch_size: int,
                   grid: Tuple[int, int],
                   generator: Optional[torch.Generator] = None) -> Tensor:
        """Random patch mask ``[B, h, w]`` with exactly ``num_mixed`` ones."""
        num_patches = grid[0] * grid[1]
        num = self.num_mixed(num_patches)
        noise = torch.rand(batch_size, num_patches, generator=generator)
        ranks = noise.argsort(dim=1).argsort(dim=1)
        return (ranks < num).view(batch_size, *grid)

    def __call__(
            self,
            inputs: Tensor,
            generator: Optional[torch.Generator] = None,
            partners: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """``mixed[k] = m * partners[sigma(k)] + (1 - m) * inputs[k]``.

        ``partners`` (default ``inputs``) are the views the partner images
        contribute: M3I's first image shows its target view and the other
        image its input view (Sec. 3.3).
        """
        if partners is None:
            partners = inputs
        elif partners.shape != inputs.shape:
            raise ValueError('M3IMixer: partners must have the shape of the '
                             f'inputs {tuple(inputs.shape)}, got '
                             f'{tuple(partners.shape)}')
        if inputs.dim() != 4:
            raise ValueError('M3IMixer: inputs must be [B, C, H, W], got '
                             f'shape {tuple(inputs.shape)}')
        B, _, H, W = inputs.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f'M3IMixer: image size {H}x{W} is not a '
                             f'multiple of patch_size={p}')
        sigma = self.permutation(B, generator).to(inputs.device)
        mask = self.patch_mask(B, (H // p, W // p), generator)
        mask = mask.to(inputs.device)
        pixel_mask = mask.repeat_interleave(
            p, dim=1).repeat_interleave(
                p, dim=2).unsqueeze(1)
        mixed = torch.where(pixel_mask, partners[sigma], inputs)
        return mixed, mask, sigma

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'mix_ratio={self.mix_ratio}, '
                f'allow_self_pairs={self.allow_self_pairs})')
