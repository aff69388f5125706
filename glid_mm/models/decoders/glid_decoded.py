"""What GLID's fine-tuning models and heads share around the decoder.

GLID Sec. 3.1 "Architecture": a Swin encoder, a Bi-FPN neck fusing its four
levels and a query decoder of ``L`` cross- / self-attention blocks; every
fine-tuning model of Sec. 3.2 / Sec. 4 keeps all three (loaded from the
pre-training checkpoint) and replaces only the top linear head. This module
holds what those models share, beside the decoder (:class:`GLIDDecoder`):

- :class:`GLIDDecoded`, what a GLID detector / segmentor / pose estimator
  hands to its head as ``x``: the neck's pyramid and the decoder's
  per-block query states;
- :func:`build_query_decoder`, which builds the model-level decoder with the
  head's number of queries;
- :func:`check_query_feat`, the heads' input check, and
  :func:`check_neck_feats`, the models' check of the neck's pyramid;
- the wiring itself, :class:`GLIDWiringMixin`, is in
  :mod:`glid_mm.models.decoders.glid_wiring`.

No toolbox (mmdet / mmseg / mmpose / mmpretrain) is imported here, so the
module loads with any subset of them; the decoder's config is built through
the registry.
"""
from typing import NamedTuple, Sequence, Tuple

import torch.nn as nn
from mmengine.config import ConfigDict
from torch import Tensor

from glid_mm.registry import build_model


class GLIDDecoded(NamedTuple):
    """Features a GLID fine-tuning model hands to its task head.

    Attributes:
        feats (tuple[Tensor]): Neck (BiFPN) outputs, fine to coarse,
            ``[B, C_f, H_l, W_l]``; ``feats[0]`` is the 1/4-scale map.
        query_states (Tensor): Every decoder block's output
            ``[L, B, Q, C_q]`` (deep supervision uses all ``L``).
    """
    feats: Tuple[Tensor, ...]
    query_states: Tensor


def build_query_decoder(decoder: dict, num_queries: int) -> nn.Module:
    """Build the GLID query decoder for a head with ``num_queries`` queries.

    The head's ``num_queries`` is the single source of truth: it is written
    into the decoder config when absent; a different explicit value is an
    error rather than a silent override.

    Args:
        decoder (dict): Decoder config, e.g. ``dict(type='GLIDDecoder', ...)``.
        num_queries (int): The head's number of queries ``M`` (eq. 3).
    """
    if not isinstance(decoder, dict) or 'type' not in decoder:
        raise TypeError('decoder must be a config dict with a "type", got '
                        f'{decoder!r}')
    cfg = ConfigDict(decoder)
    given = cfg.get('num_queries', None)
    if given is not None and given != num_queries:
        raise ValueError(f'decoder.num_queries={given} differs from the '
                         f"head's num_queries={num_queries}; set it once, "
                         'on the head')
    cfg['num_queries'] = num_queries
    return build_model(cfg)


def check_query_feat(query_states: Tensor,
                     feat: Tensor,
                     num_queries: int,
                     in_channels: int,
                     feat_channels: int,
                     queries_name: str = 'num_queries') -> None:
    """Check a head's inputs: ``query_states [..., B, M, C_q]`` and the
    1/4-scale feature ``f^b [B, C_f, h, w]`` of the same batch; the error
    names the head argument at fault (``queries_name`` is what the head
    calls ``M``, e.g. ``num_keypoints``)."""
    if (query_states.dim() < 3 or query_states.shape[-1] != in_channels
            or query_states.shape[-2] != num_queries):
        raise ValueError(
            f'query_states must be [..., B, {num_queries}, {in_channels}] '
            f'({queries_name}, in_channels), got '
            f'{tuple(query_states.shape)}')
    if (feat.dim() != 4 or feat.shape[1] != feat_channels
            or feat.shape[0] != query_states.shape[-3]):
        raise ValueError(
            f'the 1/4-scale feature must be [{query_states.shape[-3]}, '
            f'{feat_channels}, h, w] (batch of query_states, '
            f'feat_channels), got {tuple(feat.shape)}')


def check_neck_feats(feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
    """Check the neck's pyramid and return it as a tuple.

    Args:
        feats (Sequence[Tensor]): Neck outputs, fine to coarse, each
            ``[B, C, H_l, W_l]`` with one batch size ``B``.

    Returns:
        tuple[Tensor]: ``feats`` as a tuple (the same tensors).

    Raises:
        ValueError: no level, a level that is not 4-D, or levels of
            different batch sizes.
    """
    feats = tuple(feats)
    if not feats:
        raise ValueError('the neck returned no feature level; feats must be '
                         'a non-empty tuple of [B, C, H_l, W_l]')
    for level, x in enumerate(feats):
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
            raise ValueError(f'neck feature level {level} must be '
                             f'[B, C, H_l, W_l], got {shape}')
        if x.shape[0] != feats[0].shape[0]:
            raise ValueError(
                f'neck feature level {level} has batch {x.shape[0]}, level '
                f'0 has {feats[0].shape[0]}; every level must be '
                '[B, C, H_l, W_l] of one batch')
    return feats
