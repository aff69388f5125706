"""Swin encoder of GLID: visible tokens only (default) or mask tokens."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.selfsup.simmim import SimMIMSwinTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor

# yapf: disable
from glid_mm.models.layers.glid_visible_tokens import (VisiblePositions,
                                                       effective_window,
                                                       merge_visible,
                                                       scatter_visible,
                                                       visible_swin_block,
                                                       window_groups)
# yapf: enable
from glid_mm.registry import MODELS

MASK_MODES = ('visible', 'mask_token')


@MODELS.register_module()
class GLIDSwinTransformer(SimMIMSwinTransformer):
    """mmpretrain's Swin with GLID's init and a masked pre-training forward.

    Two ways to consume a masked image (``mask_mode``):

    - ``'visible'`` (default, GLID Sec. 3.1: "the visual encoder is utilized
      to only process the visible tokens following MAE"): only the pixels of
      visible mask units are patch-embedded, and every LayerNorm, projection,
      MLP and patch merge runs on visible tokens only; window attention
      (regular and shifted) is restricted to the visible tokens of each
      window, with the relative position bias of their true positions
      (GreenMIM's semantics, our packing: see
      :mod:`glid_mm.models.layers.glid_visible_tokens`). The mask unit must
      be a multiple of the total stride (32 px for 4 stages), so 2x2 merges
      never straddle a visible and a masked unit. The output maps hold zeros
      at masked positions; :class:`GLID` fills them with learnable per-level
      embeddings before the Bi-FPN. On a mask with 75 % of units masked the
      encoder computes a quarter of the tokens. The parameters are exactly
      the dense Swin's (no mask token), so the state dict has the keys of
      ``mmpretrain.SwinTransformer``.

      At every visible position the output is the dense Swin's with the
      masked keys taken out of each window, and with nothing masked it is
      ``SwinTransformer.forward`` itself, also in these settings (tested
      against mmpretrain's Swin in
      ``tests/models/backbones/test_glid_swin_visible_settings.py``):

      * maps that are not a whole number of windows, and maps no larger
        than the window with ``pad_small_map=True``: mmpretrain zero-pads
        the normalised map to whole windows and the padding is a key of its
        window (not masked); the visible path adds those keys (``qkv(0)``)
        to the windows it computes. A map smaller than the window without
        ``pad_small_map`` is refused (ValueError naming
        ``pad_small_map=True``), as mmpretrain asserts.
      * ``drop_path_rate > 0``: ``DropPath`` draws one keep / drop per image
        and branch (``[B, 1, 1]``) on the visible tokens as on the full
        map, in the same order, so from the same RNG state the same images
        are dropped as in the dense Swin.
      * attention dropout (``attn_cfgs=dict(attn_drop=p)``): each attention
        weight is dropped with probability ``p`` and rescaled as in
        ``WindowMSA``, drawn over the packed windows (the same draws only
        where the packing is the dense partition); ``drop_rate`` drops
        visible token channels as the dense Swin drops all tokens'.
      * non-square inputs: a non-square grid of square mask units, the
        same windows, small-map rule (``min(H, W)``) and position
        embedding resize as the dense Swin.
    - ``'mask_token'`` (SimMIM, kept as an ablation): masked 4 px tokens are
      replaced by a learnable ``mask_token`` after the patch embedding and
      Swin runs on the full grid. Any mask unit that is a multiple of the
      patch size works.

    Other changes over :class:`SimMIMSwinTransformer`:

    - ``mask`` defaults to None, so mmdet / mmseg / mmpose call the backbone
      as ``backbone(x)``; with None it is a plain Swin.
    - the masked forward returns every stage in ``out_indices`` normalised
      before its downsampling, exactly like the unmasked one.
    - Linear layers get xavier_uniform (supp. B.1: "xavier_uniform to
      initialize all Transformer blocks following original ViT") instead of
      truncated normal; the mask token and relative position tables keep
      trunc-normal 0.02.

    Args:
        arch (str | dict): mmpretrain's Swin sizes (``'tiny'`` ...
            ``'large'``) or ``'nano'`` (width 32, one block per stage, for
            smoke runs on CPUs). Defaults to ``'tiny'`` (mmpretrain's).
        mask_mode (str): ``'visible'`` or ``'mask_token'``. Defaults to
            ``'visible'``.
        pretrained (str, optional): A checkpoint of the same Swin (keys as
            mmpretrain's ``SwinTransformer``), what mmseg passes as
            ``model.pretrained``; the same as ``init_cfg=dict(type=
            'Pretrained', checkpoint=...)``. Defaults to None.
        **kwargs: Those of :class:`mmpretrain.models.SwinTransformer`.

    Shapes:
        x: ``[B, 3, H, W]``; mask: ``[B, U_h, U_w]`` on the grid of mask
        units (``H / U_h`` pixels each, the same in both directions), 1 =
        masked, or None. Every image of a batch must keep the same number of
        visible units (``'visible'``).
        returns a tuple of ``[B, C_i, H / 2^(i+2), W / 2^(i+2)]`` for each
        index in ``out_indices``.
    """

    #: mmpretrain's Swin sizes plus ``'nano'`` (``'n'``): width 32, one
    #: block per stage, the smoke-scale GLID of the bundled-data configs
    #: (with ``window_size=2`` for 128 px images)
    arch_zoo = {
        **SimMIMSwinTransformer.arch_zoo,
        **dict.fromkeys(['n', 'nano'], {
                            'embed_dims': 32,
                            'depths': [1, 1, 1, 1],
                            'num_heads': [1, 2, 4, 8]
                        }),
    }

    def __init__(self,
                 *args,
                 mask_mode: str = 'visible',
                 pretrained: Optional[str] = None,
                 **kwargs) -> None:
        if mask_mode not in MASK_MODES:
            raise ValueError(f'mask_mode must be one of {MASK_MODES}, got '
                             f'{mask_mode!r}')
        if pretrained is not None:
            # what mmseg's segmentors pass as model.pretrained, mapped as
            # mmseg's own backbones map it
            if kwargs.get('init_cfg') is not None:
                raise ValueError('GLIDSwinTransformer: give pretrained or '
                                 'init_cfg, not both')
            kwargs['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(*args, **kwargs)
        self.mask_mode = mask_mode
        if mask_mode == 'visible':
            del self.mask_token

    @property
    def total_stride(self) -> int:
        """Pixels per token at the last stage."""
        merges = sum(s.downsample is not None for s in self.stages[:-1])
        return self.patch_embed.projection.stride[0] * 2**merges

    def init_weights(self) -> None:
        if self.mask_mode == 'mask_token':
            return super().init_weights()
        # SimMIMSwinTransformer.init_weights without the mask token
        SwinTransformer.init_weights(self)
        if (isinstance(self.init_cfg, dict)
                and self.init_cfg['type'] == 'Pretrained'):
            return
        if self.use_abs_pos_embed:
            trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.apply(self._init_weights)

    def _unit_size(self, x: Tensor, mask: Tensor) -> int:
        B, _, H, W = x.shape
        if mask.dim() != 3 or mask.shape[0] != B:
            raise ValueError(f'mask must be [B={B}, U_h, U_w], got '
                             f'{list(mask.shape)}')
        uh, uw = mask.shape[1:]
        if H % uh or W % uw or H // uh != W // uw:
            raise ValueError(f'mask grid {(uh, uw)} does not tile the input '
                             f'{(H, W)} with square units')
        unit = H // uh
        stride = self.patch_embed.projection.stride[0]
        if unit % stride:
            raise ValueError(f'mask unit {unit} px is not a multiple of the '
                             f'patch size {stride}')
        return unit

    def forward(self,
                x: Tensor,
                mask: Optional[Tensor] = None) -> Sequence[Tensor]:
        if mask is None:
            return SwinTransformer.forward(self, x)
        unit = self._unit_size(x, mask)
        if self.mask_mode == 'visible':
            return self._forward_visible(x, mask.bool(), unit)
        return self._forward_mask_token(x, mask, unit)

    def _forward_mask_token(self, x: Tensor, mask: Tensor,
                            unit: int) -> Tuple[Tensor, ...]:
        x, hw_shape = self.patch_embed(x)
        s = unit // self.patch_embed.projection.stride[0]
        mask = mask.repeat_interleave(s, 1).repeat_interleave(s, 2)
        w = mask.flatten(1).unsqueeze(-1).type_as(x)
        x = x * (1. - w) + self.mask_token * w
        if self.use_abs_pos_embed:
            x = x + resize_pos_embed(
                self.absolute_pos_embed, self.patch_resolution, hw_shape,
                self.interpolate_mode, self.num_extra_tokens)
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
                    out.view(-1, *hw_shape,
                             self.num_features[i]).permute(0, 3, 1,
                                                           2).contiguous())
            if stage.downsample is not None and not self.out_after_downsample:
                x, hw_shape = stage.downsample(x, hw_shape)
        return tuple(outs)

    def visible_units(self, mask: Tensor) -> Tensor:
        """``[B, n]`` row-major indices of the visible units of ``mask``."""
        keep = ~mask.flatten(1)
        counts = keep.sum(1)
        if (counts != counts[0]).any() or int(counts[0]) == 0:
            raise ValueError(
                'visible-token encoding needs the same, non-zero number of '
                'visible mask units in every image of a batch, got '
                f'{counts.tolist()} (GLIDMaskGenerator gives a fixed count)')
        return keep.nonzero()[:, 1].view(mask.shape[0], int(counts[0]))

    def _forward_visible(self, x: Tensor, mask: Tensor,
                         unit: int) -> Tuple[Tensor, ...]:
        if unit % self.total_stride:
            raise ValueError(
                f'mask unit {unit} px is not a multiple of the encoder\'s '
                f'total stride {self.total_stride} px: visible-token '
                "encoding needs whole units at every stage (use mask_patch_"
                f"size={self.total_stride} or mask_mode='mask_token')")
        if self.out_after_downsample:
            raise ValueError('visible-token encoding supports '
                             'out_after_downsample=False only')
        B, C_in, H, W = x.shape
        uh, uw = mask.shape[1:]
        units = self.visible_units(mask)
        n = units.shape[1]
        # only the pixels of visible units are embedded
        patches = x.view(B, C_in, uh, unit, uw,
                         unit).permute(0, 2, 4, 1, 3,
                                       5).reshape(B, uh * uw, C_in, unit, unit)
        patches = torch.gather(
            patches, 1, units[:, :, None, None,
                              None].expand(-1, -1, C_in, unit, unit))
        tokens, (t, _) = self.patch_embed(
            patches.reshape(B * n, C_in, unit, unit))
        x = tokens.reshape(B, n * t * t, -1)
        pos = VisiblePositions(units, (uh, uw), t)
        if self.use_abs_pos_embed:
            table = resize_pos_embed(self.absolute_pos_embed,
                                     self.patch_resolution, pos.hw,
                                     self.interpolate_mode,
                                     self.num_extra_tokens)[0]
            x = x + table[pos.y * pos.hw[1] + pos.x]
        x = self.drop_after_pos(x)
        outs: List[Tensor] = []
        for i, stage in enumerate(self.stages):
            cache = {}
            for block in stage.blocks:
                key = effective_window(block.attn, pos.hw)
                if key not in cache:
                    cache[key] = window_groups(pos, *key)
                x = visible_swin_block(block, x, cache[key])
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(scatter_visible(out, pos))
            if stage.downsample is not None:
                x = merge_visible(stage.downsample, x, pos)
                pos = pos.merged()
        return tuple(outs)

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)
