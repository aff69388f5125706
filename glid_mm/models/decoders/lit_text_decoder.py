"""Autoregressive Transformer text decoder with a key/value cache.

Sec. 3-4 of "A Study of Autoregressive Decoders for Multi-Tasking in Computer
Vision": a standard Transformer decoder with causal self-attention over the
text tokens and cross-attention to the image encoder's token sequence; the
paper varies only its depth (1, 2, 6, 12 layers; App. D, Tables 4-5).

Choices where the paper is silent (stated here, not taken from the paper):
pre-LayerNorm blocks, learned absolute position embeddings, a LayerNorm on
the encoder tokens before cross-attention (frozen CNN features have arbitrary
scale), and an untied output projection.
"""
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from glid_mm.registry import MODELS

Cache = Dict[str, object]


class CachedAttention(nn.Module):
    """Multi-head attention whose keys/values can be cached across steps.

    Args:
        embed_dims (int): Query / output width ``C``.
        num_heads (int): Heads; ``C`` must be divisible by it.
        kv_dims (int): Width of the key/value input. Defaults to ``C``.
        attn_drop (float): Dropout on attention weights (training only).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 kv_dims: Optional[int] = None,
                 attn_drop: float = 0.) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.q = nn.Linear(embed_dims, embed_dims)
        self.kv = nn.Linear(kv_dims or embed_dims, 2 * embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.attn_drop = attn_drop

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> BHTD
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dims).transpose(1, 2)

    def project_kv(self, source: torch.Tensor):
        """Keys and values ``[B, H, S, D]`` of ``source: [B, S, Ckv]``."""
        k, v = self.kv(source).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: Optional[torch.Tensor]) -> torch.Tensor:
        """``x: [B, T, C]``, ``k, v: [B, H, S, D]``, ``mask: [B, 1, T, S]``
        bool, True = may attend. Returns ``[B, T, C]``."""
        q = self._split(self.q(x))
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.attn_drop if self.training else 0.)
        B, _, T, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(B, T, -1))


class DecoderLayer(nn.Module):
    """Pre-LN block: causal self-attn, cross-attn to image tokens, FFN."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int,
                 memory_dims: int, drop_rate: float, attn_drop_rate: float,
                 norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.self_attn = CachedAttention(
            embed_dims, num_heads, attn_drop=attn_drop_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.cross_attn = CachedAttention(
            embed_dims, num_heads, memory_dims, attn_drop=attn_drop_rate)
        self.norm3 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=ffn_dims,
            ffn_drop=drop_rate,
            dropout_layer=dict(type='Dropout', drop_prob=drop_rate),
            act_cfg=act_cfg)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x, memory, self_mask, cross_mask, cache):
        h = self.norm1(x)
        k, v = self.self_attn.project_kv(h)
        if cache is not None:
            if 'self_k' in cache:
                k = torch.cat([cache['self_k'], k], dim=2)
                v = torch.cat([cache['self_v'], v], dim=2)
            cache['self_k'], cache['self_v'] = k, v
        x = x + self.drop(self.self_attn(h, k, v, self_mask))
        if cache is not None and 'cross_k' in cache:
            k, v = cache['cross_k'], cache['cross_v']
        else:
            k, v = self.cross_attn.project_kv(memory)
            if cache is not None:
                cache['cross_k'], cache['cross_v'] = k, v
        x = x + self.drop(self.cross_attn(self.norm2(x), k, v, cross_mask))
        return self.ffn(self.norm3(x), identity=x)


@MODELS.register_module(scopes=('mmpretrain', ))
class LiTTextDecoder(BaseModule):
    """Text decoder of the LiT decoder (Sec. 3-4, App. D).

    Args:
        vocab_size (int): Output vocabulary ``V`` (set by
            :class:`LiTDecoder` from its tokenizer).
        memory_dims (int): Channels ``Cm`` of the image tokens.
        arch (str | dict): ``'tiny'`` (128 wide, 4 heads, 2 layers),
            ``'small'`` (384, 6, 6) or ``'base'`` (768, 12, 12; the paper's
            "standard Base Transformer", Sec. 4), or a dict with
            ``embed_dims``, ``num_heads``, ``ffn_dims``, ``num_layers``.
            Defaults to ``'base'``.
        num_layers (int, optional): Overrides the preset depth (the paper
            uses 1, 2, 6 and 12).
        max_length (int): Longest token sequence, incl. ``<bos>`` (Sec. 4: 64).
        drop_rate (float): Residual/FFN dropout (App. C: 0.1).
        attn_drop_rate (float): Attention-weight dropout. Defaults to 0.
        norm_cfg (dict): Defaults to ``dict(type='LN')``.
        act_cfg (dict): Defaults to ``dict(type='GELU')``.
        init_cfg (dict, optional): mmengine init config.

    Shapes: ``tokens: [B, T]`` ids, ``memory: [B, N, Cm]`` image tokens,
    ``memory_mask: [B, N]`` bool (True = padding), ``positions: [B, T]``,
    ``key_padding_mask: [B, S]`` bool over all self-attention keys so far
    (True = padding); output ``logits: [B, T, V]``.
    """

    arch_zoo = {
        'tiny': dict(embed_dims=128, num_heads=4, ffn_dims=512, num_layers=2),
        'small':
        dict(embed_dims=384, num_heads=6, ffn_dims=1536, num_layers=6),
        'base':
        dict(embed_dims=768, num_heads=12, ffn_dims=3072, num_layers=12),
    }

    def __init__(self,
                 vocab_size: int,
                 memory_dims: int,
                 arch: Union[str, dict] = 'base',
                 num_layers: Optional[int] = None,
                 max_length: int = 64,
                 drop_rate: float = 0.1,
                 attn_drop_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in self.arch_zoo:
                raise ValueError(f'arch={arch!r} is not one of '
                                 f'{sorted(self.arch_zoo)}')
            arch = dict(self.arch_zoo[arch])
        else:
            missing = {'embed_dims', 'num_heads', 'ffn_dims', 'num_layers'
                       } - set(arch)
            if missing:
                raise ValueError(f'arch dict misses keys {sorted(missing)}')
            arch = dict(arch)
        if num_layers is not None:
            arch['num_layers'] = num_layers
        for key in ('embed_dims', 'num_heads', 'ffn_dims', 'num_layers'):
            if not isinstance(arch[key], int) or arch[key] < 1:
                raise ValueError(f'{key} must be a positive int, got '
                                 f'{arch[key]!r}')
        if arch['embed_dims'] % arch['num_heads']:
            raise ValueError(f'embed_dims={arch["embed_dims"]} is not '
                             f'divisible by num_heads={arch["num_heads"]}')
        for key, val in dict(
                vocab_size=vocab_size,
                memory_dims=memory_dims,
                max_length=max_length).items():
            if not isinstance(val, int) or val < 2:
                raise ValueError(f'{key} must be an int >= 2, got {val!r}')
        for key, val in dict(
                drop_rate=drop_rate, attn_drop_rate=attn_drop_rate).items():
            if not 0. <= val < 1.:
                raise ValueError(f'{key} must be in [0, 1), got {val!r}')
        self.arch = arch
        self.vocab_size = vocab_size
        self.memory_dims = memory_dims
        self.max_length = max_length
        C = arch['embed_dims']
        self.token_embed = nn.Embedding(vocab_size, C)
        self.pos_embed = nn.Parameter(torch.zeros(max_length, C))
        self.memory_norm = build_norm_layer(norm_cfg, memory_dims)[1]
        self.drop = nn.Dropout(drop_rate)
        self.layers = nn.ModuleList([
            DecoderLayer(C, arch['num_heads'], arch['ffn_dims'], memory_dims,
                         drop_rate, attn_drop_rate, norm_cfg, act_cfg)
            for _ in range(arch['num_layers'])
        ])
        self.norm = build_norm_layer(norm_cfg, C)[1]
        self.head = nn.Linear(C, vocab_size)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            trunc_normal_(self.pos_embed, std=0.02)
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    trunc_normal_(m.weight, std=0.02)
                    if getattr(m, 'bias', None) is not None:
                        nn.init.zeros_(m.bias)

    def init_cache(self) -> Cache:
        """An empty key/value cache for incremental decoding."""
        return dict(length=0, layers=[dict() for _ in self.layers])

    def forward(self,
                tokens: torch.Tensor,
                memory: torch.Tensor,
                memory_mask: Optional[torch.Tensor] = None,
                positions: Optional[torch.Tensor] = None,
                key_padding_mask: Optional[torch.Tensor] = None,
                cache: Optional[Cache] = None,
                last_only: bool = False) -> torch.Tensor:
        """Logits ``[B, T, V]`` for ``tokens`` (see class doc for shapes);
        ``[B, 1, V]`` for the last position only if ``last_only``.

        With ``cache`` (from :meth:`init_cache`) only the new ``tokens`` are
        fed; keys/values of earlier steps and the projected image tokens are
        reused, and the cache is updated in place.
        """
        B, T = tokens.shape
        past = cache['length'] if cache is not None else 0
        if positions is None:
            positions = torch.arange(
                past, past + T, device=tokens.device).expand(B, T)
        if int(positions.max()) >= self.max_length:
            raise ValueError(f'position {int(positions.max())} exceeds '
                             f'max_length={self.max_length}')
        x = self.drop(self.token_embed(tokens) + self.pos_embed[positions])
        S = past + T
        # causal mask over all keys so far; a query always sees itself, so
        # no row is fully masked (left padding would otherwise give NaNs).
        q_idx = torch.arange(past, S, device=tokens.device)[:, None]
        k_idx = torch.arange(S, device=tokens.device)[None, :]
        self_mask = (k_idx <= q_idx)[None, None].expand(B, 1, T, S)
        if key_padding_mask is not None:
            if key_padding_mask.shape != (B, S):
                raise ValueError(f'key_padding_mask must be [B, S]=[{B}, '
                                 f'{S}], got {list(key_padding_mask.shape)}')
            self_mask = self_mask & ~key_padding_mask[:, None, None, :]
            self_mask = self_mask | (k_idx == q_idx)[None, None]
        cross_mask = None
        if memory_mask is not None:
            cross_mask = ~memory_mask[:, None, None, :]
        if memory.shape[-1] != self.memory_dims:
            raise ValueError(f'image tokens have {memory.shape[-1]} channels '
                             f'but decoder.memory_dims={self.memory_dims}')
        if cache is None or 'cross_k' not in cache['layers'][0]:
            memory = self.memory_norm(memory)
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, self_mask, cross_mask,
                      None if cache is None else cache['layers'][i])
        if cache is not None:
            cache['length'] = S
        if last_only:
            x = x[:, -1:]
        return self.head(self.norm(x))


def reorder_cache(cache: Cache, index: torch.Tensor) -> Cache:
    """Select batch rows ``index: [B']`` of every cached tensor (beams)."""
    cache['layers'] = [{
        k: v.index_select(0, index)
        for k, v in layer.items()
    } for layer in cache['layers']]
    return cache
