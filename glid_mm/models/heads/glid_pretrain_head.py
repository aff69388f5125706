"""GLID's pre-training head: a linear map from query states to patch pixels."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from glid_mm.registry import MODELS, build_nested


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, (H/p)(W/p), p * p * C]`` (MAE's order:
    row-major patches, each flattened as ``(p_y, p_x, C)``)."""
    B, C, H, W = imgs.shape
    p = patch_size
    if H % p or W % p:
        raise ValueError(f'image size {(H, W)} is not divisible by the mask '
                         f'patch size {p}')
    x = imgs.reshape(B, C, H // p, p, W // p, p)
    x = torch.einsum('nchpwq->nhwpqc', x)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(x: Tensor,
               patch_size: int,
               hw: tuple,
               channels: int = 3) -> Tensor:
    """Inverse of :func:`patchify` for a ``(H/p, W/p)`` grid ``hw``."""
    B = x.shape[0]
    h, w = hw
    p = patch_size
    x = x.reshape(B, h, w, p, p, channels)
    x = torch.einsum('nhwpqc->nchpwq', x)
    return x.reshape(B, channels, h * p, w * p)


@MODELS.register_module(scopes=('mmpretrain', ))
class GLIDPretrainHead(BaseModule):
    """Top linear head of GLID pre-training and the loss of eq. 2.

    GLID Sec. 3.1: "a linear transformation head is utilized to convert the
    decoded query representations to target predictions. We use pixel values
    P^t at the masked locations as the reconstruction targets" with the MSE
    of eq. 2. The loss is averaged over pixels and channels of the masked
    patches (MAE's convention; eq. 2's per-patch squared norm divided by the
    patch size), built from mmpretrain's ``PixelReconstructionLoss``. The
    ``[CLS]`` state never reaches this head (the algorithm strips it), so it
    is out of the loss and learns only through self-attention (Sec. 3.1).

    Args:
        in_channels (int): Decoder width ``C``. Defaults to 512.
        patch_size (int): Side of a masked patch in pixels. Defaults to 32.
        img_channels (int): Image channels. Defaults to 3.
        norm_pix (bool): Normalise each target patch by its own mean / std
            (MAE's option). Defaults to False (plain pixels, as the paper).
        loss (dict): mmpretrain loss config. Defaults to
            ``dict(type='PixelReconstructionLoss', criterion='L2')``.
        init_cfg (dict, optional): Defaults to None (xavier_uniform).

    Shapes:
        states: ``[B, N, C]`` states of the N mask queries.
        pred: ``[B, N, patch_size**2 * img_channels]``.
    """

    def __init__(self,
                 in_channels: int = 512,
                 patch_size: int = 32,
                 img_channels: int = 3,
                 norm_pix: bool = False,
                 loss: dict = dict(
                     type='PixelReconstructionLoss', criterion='L2'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if patch_size <= 0 or in_channels <= 0 or img_channels <= 0:
            raise ValueError('in_channels, patch_size and img_channels must '
                             f'be positive, got {in_channels}, {patch_size}, '
                             f'{img_channels}')
        self.patch_size = patch_size
        self.img_channels = img_channels
        self.norm_pix = norm_pix
        self.predictor = nn.Linear(in_channels, patch_size**2 * img_channels)
        self.loss_module = build_nested(loss, home='mmpretrain')

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            nn.init.xavier_uniform_(self.predictor.weight)
            nn.init.zeros_(self.predictor.bias)

    def forward(self, states: Tensor) -> Tensor:
        return self.predictor(states)

    def construct_target(self, imgs: Tensor, mask_idx: Tensor) -> Tensor:
        """Pixels of the masked patches, ``[B, N, p * p * 3]``.

        Args:
            imgs (Tensor): Normalised input images ``[B, 3, H, W]``.
            mask_idx (Tensor): Row-major indices of the masked patches on the
                ``(H/p, W/p)`` grid, ``[B, N]``.
        """
        target = patchify(imgs, self.patch_size)
        target = torch.gather(
            target, 1, mask_idx[..., None].expand(-1, -1, target.shape[-1]))
        if self.norm_pix:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6)**.5
        return target

    def loss(self, pred: Tensor, imgs: Tensor, mask_idx: Tensor) -> Tensor:
        """Eq. 2 on the masked patches only."""
        target = self.construct_target(imgs, mask_idx)
        if pred.shape != target.shape:
            raise ValueError(f'prediction {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} differ')
        return self.loss_module(pred, target)
