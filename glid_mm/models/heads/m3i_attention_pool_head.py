"""Attention pooling + linear head for M3I's category target (Sec. 3.4)."""
from typing import Optional

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from glid_mm.registry import MODELS, build_nested


@MODELS.register_module(scopes=('mmpretrain', ))
class M3IAttentionPoolHead(BaseModule):
    """Attention pooling [CoCa] followed by a linear projection.

    M3I predicts the category embedding (supervised) or the text embedding
    (weakly-supervised) of each of the two mixed images "through an
    attention pooling layer followed by a linear projection" (Sec. 3.4);
    for ImageNet "the linear classifier weight is the category embedding"
    (Sec. 4). One learnable query attends over the tokens of one image
    (CoCa's attentional pooler: norm on keys, multi-head attention, norm),
    then ``fc`` projects to ``num_classes`` (class logits, the class
    embeddings being ``fc.weight``) or to a text-embedding size.

    Args:
        in_channels (int): Token size ``C``.
        num_classes (int): Output size (classes, or text embedding dims).
        num_heads (int): Attention heads. Defaults to 8.
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        loss (dict): mmpretrain loss for :meth:`loss`. Defaults to
            ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        init_cfg (dict, optional): Initialization config. Defaults to None.

    Shapes:
        tokens ``[B, V, C]`` -> pooled ``[B, C]`` -> output
        ``[B, num_classes]``; labels ``[B]`` long, ``-1`` = unlabelled.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 num_heads: int = 8,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('num_classes', num_classes), ('num_heads',
                                                           num_heads)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f'M3IAttentionPoolHead: {name} must be a '
                                 f'positive int, got {name}={value!r}')
        if in_channels % num_heads:
            raise ValueError(f'M3IAttentionPoolHead: in_channels='
                             f'{in_channels} is not divisible by '
                             f'num_heads={num_heads}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.query = nn.Parameter(torch.zeros(1, 1, in_channels))
        self.norm_kv = build_norm_layer(norm_cfg, in_channels)[1]
        self.attn = nn.MultiheadAttention(
            in_channels, num_heads, batch_first=True)
        self.norm_out = build_norm_layer(norm_cfg, in_channels)[1]
        self.fc = nn.Linear(in_channels, num_classes)
        self.loss_module = build_nested(loss, home='mmpretrain')

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            nn.init.normal_(self.query, std=.02)
            nn.init.normal_(self.fc.weight, std=.01)
            nn.init.zeros_(self.fc.bias)

    def pool(self, tokens: Tensor) -> Tensor:
        """``[B, V, C]`` -> ``[B, C]``."""
        if tokens.dim() != 3 or tokens.size(-1) != self.in_channels:
            raise ValueError(f'M3IAttentionPoolHead: tokens must be [B, V, '
                             f'{self.in_channels}], got '
                             f'{tuple(tokens.shape)}')
        kv = self.norm_kv(tokens)
        query = self.query.expand(tokens.size(0), -1, -1)
        pooled, _ = self.attn(query, kv, kv, need_weights=False)
        return self.norm_out(pooled[:, 0])

    def forward(self, tokens: Tensor) -> Tensor:
        """``[B, V, C]`` -> ``[B, num_classes]``."""
        return self.fc(self.pool(tokens))

    def loss(self, tokens: Tensor, labels: Tensor) -> Tensor:
        """Loss of the labelled rows (``labels >= 0``); 0 if none is."""
        logits = self(tokens)
        valid = labels >= 0
        if not bool(valid.any()):
            return logits.sum() * 0.  # keeps every parameter in the graph
        if bool((labels[valid] >= self.num_classes).any()):
            raise ValueError(
                f'M3IAttentionPoolHead: label {int(labels.max())} out of '
                f'range for num_classes={self.num_classes}')
        return self.loss_module(logits[valid], labels[valid])
