"""The generalist query decoder of GLID (Sec. 3.1 "Architecture")."""
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from glid_mm.models.layers.glid_decoder_layer import GLIDDecoderLayer
from glid_mm.models.layers.glid_queries import GLIDQueries
from glid_mm.registry import MODELS

# (layer index, queries [B, Q, C], level shape (H, W)) -> attn mask or None
CrossAttnMaskFn = Callable[[int, Tensor, tuple], Optional[Tensor]]


@MODELS.register_module()
class GLIDDecoder(BaseModule):
    """GLID decoder: ``L`` blocks of cross-attention, self-attention and FFN.

    GLID Sec. 3.1 "Architecture": "the multi-scale feature maps are then
    inputted to the decoder of L cross-attention and self-attention blocks
    ... Following Mask2Former, the decoder processes the multi-scale feature
    maps with cross-attention layers successively." Block ``i`` attends to
    level ``feat_levels[i % len(feat_levels)]`` (coarse to fine, round robin
    as Mask2Former); each memory level gets a 1x1 input projection to the
    decoder width, a learnable level embedding and a normalised sine
    positional encoding as keys' position (mmdet's ``SinePositionalEncoding``
    with ``offset=-0.5``, i.e. cell centres, so :meth:`grid_pos_embed` gives
    pre-training queries positions on the same scale). Defaults follow Sec. 4:
    6 blocks of width 512; decoder drop path 0.2 is the segmentation
    fine-tuning value of supp. Table 7 (0 for pre-training).

    The decoder owns the queries (:class:`GLIDQueries`): ``decoder.queries``
    holds ``cls_token`` (+ ``mask_token`` for pre-training, + ``query_embed``
    ``e_i`` for fine-tuning, eq. 3), so a pre-training checkpoint's decoder
    loads into any fine-tuning decoder under the same names.

    Args:
        in_channels (int): Width of the neck's levels. Defaults to 256.
        embed_dims (int): Decoder width ``C``. Defaults to 512.
        num_layers (int): Number of blocks ``L`` (Table 5: 3 / 6 / 9).
            Defaults to 6.
        num_heads (int): Attention heads. Defaults to 8.
        feedforward_channels (int): FFN hidden width. Defaults to 2048.
        feat_levels (Sequence[int]): Indices into the neck's outputs attended
            to in round robin, coarse first. Defaults to ``(3, 2, 1)``
            (1/32, 1/16, 1/8; the 1/4 map is left to the heads' dot product,
            as Mask2Former).
        num_queries (int): Fine-tuning queries ``M`` (eq. 3); 0 in
            pre-training. Defaults to 0.
        with_mask_token (bool): Hold the pre-training mask token. Defaults to
            False.
        dropout (float): Attention / FFN dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linearly increasing over
            blocks up to this value. Defaults to 0.
        act_cfg (dict): FFN activation. Defaults to ReLU.
        norm_cfg (dict): Norm after each sub-layer. Defaults to LN.
        init_cfg (dict, optional): Initialisation config. Defaults to None,
            meaning xavier_uniform for every matrix of the transformer blocks
            (supp. B.1, "following original ViT").

    Shapes:
        feats: neck outputs ``[B, in_channels, H_l, W_l]`` (fine to coarse).
        queries: ``[B, Q, C]`` (default: the fine-tuning queries ``[B, M,
        C]``).
        returns ``dict(query_states=[L, B, Q, C], attn_maps=[[B, Q, H, W]] *
        L (with return_attn), attn_levels=[int] * L)``.
    """

    def __init__(self,
                 in_channels: int = 256,
                 embed_dims: int = 512,
                 num_layers: int = 6,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 feat_levels: Sequence[int] = (3, 2, 1),
                 num_queries: int = 0,
                 with_mask_token: bool = False,
                 dropout: float = 0.0,
                 drop_path_rate: float = 0.0,
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('embed_dims', embed_dims), ('num_layers',
                                                         num_layers),
                            ('num_heads', num_heads), ('feedforward_channels',
                                                       feedforward_channels)):
            if value <= 0:
                raise ValueError(f'{name} must be positive, got {value}')
        if embed_dims % num_heads or embed_dims % 4:
            raise ValueError(f'embed_dims={embed_dims} must be divisible by '
                             f'num_heads={num_heads} and by 4 (sine '
                             'positions)')
        feat_levels = tuple(int(i) for i in feat_levels)
        if not feat_levels or min(feat_levels) < 0:
            raise ValueError('feat_levels must be non-empty non-negative '
                             f'indices, got {feat_levels}')
        if num_layers < len(feat_levels):
            raise ValueError(f'num_layers={num_layers} < len(feat_levels)='
                             f'{len(feat_levels)} would leave a level (and '
                             'its input projection) unused')
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(
                f'drop_path_rate must be in [0, 1), got {drop_path_rate}')
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.feat_levels = feat_levels
        self.queries = GLIDQueries(embed_dims, num_queries, with_mask_token)
        self.input_proj = ModuleList([
            nn.Conv2d(in_channels, embed_dims, 1)
            if in_channels != embed_dims else nn.Identity()
            for _ in feat_levels
        ])
        self.level_embed = nn.Embedding(len(feat_levels), embed_dims)
        self.positional_encoding = SinePositionalEncoding(
            num_feats=embed_dims // 2, normalize=True, offset=-0.5)
        dpr = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.layers = ModuleList()
        for p in dpr:
            drop = dict(type='DropPath', drop_prob=p)
            attn = dict(
                embed_dims=embed_dims,
                num_heads=num_heads,
                attn_drop=dropout,
                proj_drop=dropout,
                dropout_layer=drop,
                batch_first=True)
            self.layers.append(
                GLIDDecoderLayer(
                    self_attn_cfg=dict(attn),
                    cross_attn_cfg=dict(attn),
                    ffn_cfg=dict(
                        embed_dims=embed_dims,
                        feedforward_channels=feedforward_channels,
                        num_fcs=2,
                        ffn_drop=dropout,
                        dropout_layer=drop,
                        act_cfg=act_cfg),
                    norm_cfg=norm_cfg))

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None:
            return
        for p in self.layers.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.input_proj:
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def grid_pos_embed(self, h: int, w: int, device=None) -> Tensor:
        """Sine positions of the cells of an ``h x w`` grid, ``[h * w, C]``.

        Same encoding (normalised cell centres) as the memory's key
        positions, so a query built on patch ``(i, j)`` of any grid and the
        memory cells covering that patch carry the same positional code.
        """
        mask = torch.zeros(1, h, w, dtype=torch.bool, device=device)
        pos = self.positional_encoding(mask)  # [1, C, h, w]
        return pos.flatten(2).transpose(1, 2)[0]

    def _memory(self,
                feats: Sequence[Tensor],
                padding_mask: Optional[Tensor] = None):
        if len(feats) <= max(self.feat_levels):
            raise ValueError(f'GLIDDecoder.feat_levels={self.feat_levels} '
                             f'needs at least {max(self.feat_levels) + 1} '
                             f'feature levels, got {len(feats)}')
        memory, pos, shapes, key_masks = [], [], [], []
        for i, level in enumerate(self.feat_levels):
            x = feats[level]
            if x.dim() != 4 or x.shape[1] != self.in_channels:
                raise ValueError(f'feature level {level} must be [B, '
                                 f'{self.in_channels}, H, W] (in_channels), '
                                 f'got {tuple(x.shape)}')
            B, _, H, W = x.shape
            if padding_mask is None:
                mask = x.new_zeros((B, H, W), dtype=torch.bool)
            else:
                # DETR's rule: nearest resize of the image-size mask
                mask = F.interpolate(
                    padding_mask[:, None].float(), size=(H, W)).bool()[:, 0]
                # a level where an image is padding only (tiny image in a
                # large batch shape) would leave its queries no key at all
                mask = mask & ~mask.flatten(1).all(1)[:, None, None]
                key_masks.append(mask.flatten(1))
            pos.append(
                self.positional_encoding(mask).flatten(2).transpose(1, 2))
            x = self.input_proj[i](x).flatten(2).transpose(1, 2)
            memory.append(x + self.level_embed.weight[i][None, None])
            shapes.append((H, W))
        if padding_mask is None:
            key_masks = [None] * len(memory)
        return memory, pos, shapes, key_masks

    def forward(self,
                feats: Sequence[Tensor],
                queries: Optional[Tensor] = None,
                return_attn: bool = False,
                cross_attn_mask_fn: Optional[CrossAttnMaskFn] = None,
                self_attn_mask: Optional[Tensor] = None,
                padding_mask: Optional[Tensor] = None) -> Dict[str, List]:
        """Decode ``queries`` against the multi-scale ``feats``.

        Args:
            feats (Sequence[Tensor]): Neck outputs, fine to coarse.
            queries (Tensor, optional): ``[B, Q, C]``. Defaults to the
                fine-tuning queries ``[CLS] + e_i`` (eq. 3).
            return_attn (bool): Also return every block's cross-attention
                map (averaged over heads), ``[B, Q, H_l, W_l]``.
            cross_attn_mask_fn (callable, optional): ``fn(layer_idx, queries,
                (H, W))`` returning a bool mask (True = blocked) of shape
                ``[B * num_heads, Q, H * W]`` for Mask2Former-style masked
                attention, or None. Rows blocked everywhere are unblocked.
            self_attn_mask (Tensor, optional): ``[Q, Q]`` bool, True = query
                ``i`` may not attend to query ``j`` (e.g. H-DETR's separation
                of the one-to-one and one-to-many groups).
            padding_mask (Tensor, optional): ``[B, H_in, W_in]`` bool, True
                on the batch padding of each image (DETR's image mask). It is
                resized to every level (nearest) and used as the keys'
                padding mask; the sine positions are then normalised over
                each image's valid area, as in DETR. None (default): no
                padding is masked (GLID pre-training, the mask heads).

        Returns:
            dict: ``query_states`` ``[L, B, Q, C]`` (every block's output, for
            deep supervision), ``attn_levels`` (level index per block) and,
            with ``return_attn``, ``attn_maps``.
        """
        memory, pos, shapes, key_masks = self._memory(feats, padding_mask)
        B = memory[0].shape[0]
        if queries is None:
            queries = self.queries.finetune_queries(B)
        if (queries.dim() != 3 or queries.shape[0] != B
                or queries.shape[-1] != self.embed_dims):
            raise ValueError(f'queries must be [{B}, Q, {self.embed_dims}], '
                             f'got {tuple(queries.shape)}')
        Q = queries.shape[1]
        if self_attn_mask is not None and tuple(
                self_attn_mask.shape) != (Q, Q):
            raise ValueError(f'self_attn_mask must be [{Q}, {Q}] (queries), '
                             f'got {tuple(self_attn_mask.shape)}')
        states, attn_maps, levels = [], [], []
        x = queries
        for i, layer in enumerate(self.layers):
            k = i % len(self.feat_levels)
            attn_mask = None
            if cross_attn_mask_fn is not None:
                attn_mask = cross_attn_mask_fn(i, x, shapes[k])
                if attn_mask is not None:
                    full = attn_mask.sum(-1) == attn_mask.shape[-1]
                    attn_mask = attn_mask & ~full[..., None]
            out = layer(
                x,
                key=memory[k],
                value=memory[k],
                key_pos=pos[k],
                self_attn_mask=self_attn_mask,
                cross_attn_mask=attn_mask,
                key_padding_mask=key_masks[k],
                return_attn=return_attn)
            if return_attn:
                x, weights = out
                attn_maps.append(weights.view(B, -1, *shapes[k]))
            else:
                x = out
            states.append(x)
            levels.append(self.feat_levels[k])
        result = dict(query_states=torch.stack(states), attn_levels=levels)
        if return_attn:
            result['attn_maps'] = attn_maps
        return result
