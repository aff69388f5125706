"""Scale-invariant log loss of BinsFormer / AdaBins (GLID Sec. 3.2 losses)."""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmseg', ))
class SigLoss(nn.Module):
    """Scale-invariant (SI) log loss, BinsFormer's form of Eigen et al.

    GLID Sec. 3.2: "For the depth estimation ... we use Scale Invariant (SI)
    regression loss [14]", following BinsFormer, whose ``SigLoss`` is::

        g = log(pred + eps) - log(gt + eps)     (valid pixels of the batch)
        loss = loss_weight * sqrt(var(g) + (1 - variance_focus) * mean(g)^2)

    with ``variance_focus = 0.85`` (``var(g) + 0.15 mean(g)^2``) and
    ``loss_weight = 10`` in its NYU configs.

    Why not mmseg's ``SiLogLoss``: mmseg 1.2 computes, per image,
    ``sqrt(mean(g^2) - 0.5 mean(g)^2) = sqrt(var(g) + 0.5 mean(g)^2)`` and
    averages the images; that is a variance focus of 0.5 instead of 0.85
    (three times the weight on the global log-scale error), reduced per
    image instead of over the batch's valid pixels, and without the x10.
    It remains usable through the head's ``loss_decode``.

    Here ``var`` is the population variance ``mean(g^2) - mean(g)^2``
    (BinsFormer's ``torch.var`` is the unbiased one; they differ by a factor
    ``N / (N - 1)`` over ``N`` valid pixels of the batch).

    Args:
        variance_focus (float): ``lambda`` in ``var + (1 - lambda) mean^2``,
            in ``[0, 1]``. Defaults to 0.85 (BinsFormer / AdaBins).
        loss_weight (float): Output scale. Defaults to 1.0 (BinsFormer's
            configs use 10).
        eps (float): Depths ``<= eps`` in ``target`` are invalid (mmseg's
            depth maps mark missing measurements with 0). Also keeps the
            predicted depth away from ``log(0)``. Defaults to 1e-3.
        loss_name (str): Key of the loss in the loss dict. Defaults to
            ``'loss_depth'``.

    Shapes:
        pred, target: ``[B, 1, H, W]`` (or any equal shapes), metres.
        returns a scalar; 0 (still attached to ``pred``) without any valid
        pixel.
    """

    def __init__(self,
                 variance_focus: float = 0.85,
                 loss_weight: float = 1.0,
                 eps: float = 1e-3,
                 loss_name: str = 'loss_depth') -> None:
        super().__init__()
        if not 0.0 <= variance_focus <= 1.0:
            raise ValueError('variance_focus must be in [0, 1], got '
                             f'{variance_focus}')
        if eps <= 0:
            raise ValueError(f'eps must be positive, got {eps}')
        if not loss_name.startswith('loss_'):
            raise ValueError('loss_name must start with "loss_" (mmengine '
                             f'only back-propagates those), got {loss_name!r}')
        self.variance_focus = variance_focus
        self.loss_weight = loss_weight
        self.eps = eps
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        """SI log loss over the valid pixels of the whole batch.

        Args:
            pred (Tensor): Predicted depth.
            target (Tensor): Ground-truth depth, ``<= eps`` = invalid.
            valid_mask (Tensor, optional): Extra bool mask ANDed with
                ``target > eps``.
        """
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} must have one shape')
        valid = target > self.eps
        if valid_mask is not None:
            valid = valid & valid_mask.bool()
        if not valid.any():
            return pred.sum() * 0.0
        g = torch.log(pred[valid].clamp(min=self.eps)) - torch.log(
            target[valid])
        mean = g.mean()
        var = (g.pow(2).mean() - mean.pow(2)).clamp(min=0.0)
        d = var + (1.0 - self.variance_focus) * mean.pow(2)
        # the clamp keeps sqrt's gradient finite for a perfect prediction
        return self.loss_weight * torch.sqrt(d.clamp(min=1e-12))
