"""Input-to-target decoder for M3I's dense image targets (Sec. 3.4)."""
from typing import Optional

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule, ModuleList
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from torch import Tensor, nn

from glid_mm.models.layers.m3i_geometry import (query_position_features,
                                                sincos_2d)
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmpretrain', ))
class M3IDecoder(BaseModule):
    """Transformer decoder with ``<mask>`` queries at relative positions.

    M3I (Sec. 3.4, Sec. 4 "Implementation Details") predicts the dense
    target features with a 4-layer Transformer. As in Siamese Image Modeling
    (which M3I follows for the query positions, Fig. 2) the sequence is
    ``[extra tokens, visible tokens + pos, mask token + query pos]`` and only
    the query outputs are returned:

    * visible tokens (encoder outputs of one image, projected to
      ``embed_dims``) get the fixed 2-D sine-cosine embedding of their
      input-view grid position (mmpretrain's layout);
    * the extra tokens (the encoder's class token) get no position;
    * every query is the shared mask token plus ``Linear(sincos(row, col) ++
      sincos(10 log scale))`` of its target patch relative to the input
      view's top-left origin (SiameseIM's ``decoder_pos_mlp``).

    Layers are mmpretrain's pre-norm ``TransformerEncoderLayer``; a final
    norm and a linear predictor map to the target feature size.

    Args:
        in_channels (int): Encoder token size ``C``. Defaults to 768.
        embed_dims (int): Decoder width ``D`` (multiple of 4). Defaults to
            768 (SiameseIM's ViT-B setting).
        num_layers (int): Transformer layers. Defaults to 4 (paper).
        num_heads (int): Attention heads. Defaults to 16 (SiameseIM).
        mlp_ratio (float): FFN width over ``D``. Defaults to 4.
        out_channels (int, optional): Predicted feature size; ``C`` if None.
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        init_cfg (dict, optional): Initialization config. Defaults to None.

    Inputs:
        tokens: ``[B, V, C]`` visible tokens; token_coords: ``[B, V, 2]``
        their (row, col); query_coords: ``[B, Q, 2]``; query_scales:
        ``[B, 2]``; extra_tokens: ``[B, E, C]`` or None.

    Returns:
        Tensor: predictions ``[B, Q, out_channels]``.
    """

    def __init__(self,
                 in_channels: int = 768,
                 embed_dims: int = 768,
                 num_layers: int = 4,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 out_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('embed_dims',
                                                           embed_dims),
                            ('num_layers', num_layers), ('num_heads',
                                                         num_heads)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f'M3IDecoder: {name} must be a positive '
                                 f'int, got {name}={value!r}')
        if embed_dims % 4:
            raise ValueError(f'M3IDecoder: embed_dims={embed_dims} must be '
                             'a multiple of 4 (2-D sine-cosine embedding)')
        if embed_dims % num_heads:
            raise ValueError(f'M3IDecoder: embed_dims={embed_dims} is not '
                             f'divisible by num_heads={num_heads}')
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.out_channels = out_channels or in_channels
        self.embed = nn.Linear(in_channels, embed_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.query_pos_proj = nn.Linear(2 * embed_dims, embed_dims)
        self.layers = ModuleList([
            TransformerEncoderLayer(
                embed_dims=embed_dims,
                num_heads=num_heads,
                feedforward_channels=int(mlp_ratio * embed_dims),
                qkv_bias=True,
                norm_cfg=norm_cfg) for _ in range(num_layers)
        ])
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.pred = nn.Linear(embed_dims, self.out_channels)

    def init_weights(self) -> None:
        """MAE-style init: xavier-uniform linears, N(0, 0.02) mask token."""
        super().init_weights()
        if self.init_cfg is not None:
            return
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.mask_token, std=.02)

    def forward(self,
                tokens: Tensor,
                token_coords: Tensor,
                query_coords: Tensor,
                query_scales: Tensor,
                extra_tokens: Optional[Tensor] = None) -> Tensor:
        if tokens.dim() != 3 or tokens.size(-1) != self.in_channels:
            raise ValueError(f'M3IDecoder: tokens must be [B, V, '
                             f'{self.in_channels}], got '
                             f'{tuple(tokens.shape)}')
        B, Q = query_coords.shape[:2]
        visible = self.embed(tokens) + sincos_2d(
            token_coords, self.embed_dims).to(tokens.dtype)
        query_pos = self.query_pos_proj(
            query_position_features(query_coords, query_scales,
                                    self.embed_dims).to(tokens.dtype))
        queries = self.mask_token.expand(B, Q, -1) + query_pos
        parts = [visible, queries]
        if extra_tokens is not None:
            parts.insert(0, self.embed(extra_tokens))
        x = torch.cat(parts, dim=1)
        for layer in self.layers:
            x = layer(x)
        return self.pred(self.norm(x[:, -Q:]))
