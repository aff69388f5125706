"""Swin encoder of GLID, consuming a masked image during pre-training."""
from typing import Optional, Sequence

import torch.nn as nn
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.selfsup.simmim import SimMIMSwinTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor

from glid_mm.registry import MODELS


@MODELS.register_module()
class GLIDSwinTransformer(SimMIMSwinTransformer):
    """mmpretrain's SimMIM Swin with GLID's init and an optional mask.

    How the hierarchical encoder consumes a masked input (GLID Sec. 3.1 says
    the encoder processes "only the visible tokens following MAE"): the
    masked 4 px tokens are replaced by one learnable mask token right after
    the patch embedding, and Swin runs on the full token grid (SimMIM).
    Why this and not token dropping: Swin's shifted windows and 2x2 patch
    merging need a complete grid at every stage, so MAE-style dropping is
    not defined for it without either (a) masking attention inside windows
    and merging over holes (GreenMIM-style custom grouping; the masked
    positions still cost compute and the merge mixes visible and empty
    cells), or (b) filling the holes with another image (MixMIM, which needs
    a second reconstruction per pair). Mask-token replacement is exact (no
    pixel of a masked patch reaches the encoder), reuses mmpretrain's tested
    code, and leaves the decoder memory a full 1/4..1/32 pyramid, which the
    query decoder needs for every masked patch. It is the only mode offered:
    (a) and (b) change the objective and were not described by the paper.

    Other changes over :class:`SimMIMSwinTransformer`:

    - ``mask`` defaults to None, so mmdet / mmseg / mmpose call the backbone
      as ``backbone(x)``; with None it is a plain Swin (same keys and
      outputs as mmdet's / mmseg's ``SwinTransformer`` with
      ``pad_small_map=True``, which the conversion test checks).
    - the masked forward returns every stage in ``out_indices`` normalised
      before its downsampling, exactly like the unmasked one (SimMIM's
      masked forward supports only the last stage).
    - Linear layers get xavier_uniform (supp. B.1: "xavier_uniform to
      initialize all Transformer blocks following original ViT") instead of
      truncated normal; the mask token and relative position tables keep
      trunc-normal 0.02.

    Args: those of :class:`mmpretrain.models.SwinTransformer`.

    Shapes:
        x: ``[B, 3, H, W]``; mask: ``[B, H / 4, W / 4]`` (token grid), 1 =
        masked, or None.
        returns a tuple of ``[B, C_i, H / 2^(i+2), W / 2^(i+2)]`` for each
        index in ``out_indices``.
    """

    def forward(self, x: Tensor, mask: Optional[Tensor] = None
                ) -> Sequence[Tensor]:
        if mask is None:
            return SwinTransformer.forward(self, x)
        x, hw_shape = self.patch_embed(x)
        if tuple(mask.shape) != (x.shape[0], *hw_shape):
            raise ValueError(f'mask must be {[x.shape[0], *hw_shape]} (the '
                             'token grid of the input), got '
                             f'{list(mask.shape)}')
        w = mask.flatten(1).unsqueeze(-1).type_as(x)
        x = x * (1. - w) + self.mask_token * w
        if self.use_abs_pos_embed:
            x = x + resize_pos_embed(self.absolute_pos_embed,
                                     self.patch_resolution, hw_shape,
                                     self.interpolate_mode,
                                     self.num_extra_tokens)
        x = self.drop_after_pos(x)
        # the stage loop of SwinTransformer.forward (SimMIM's own masked
        # forward only supports out_indices=(3, ): it normalises stages
        # 0-2 after their downsampling)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw_shape = stage(
                x, hw_shape, do_downsample=self.out_after_downsample)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(
                    out.view(-1, *hw_shape, self.num_features[i]).permute(
                        0, 3, 1, 2).contiguous())
            if stage.downsample is not None and not self.out_after_downsample:
                x, hw_shape = stage.downsample(x, hw_shape)
        return tuple(outs)

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)
