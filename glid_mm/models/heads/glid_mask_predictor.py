"""GLID's mask-classification top layer, shared by the mmdet and mmseg heads.

GLID Sec. 3.2 "Image segmentation": "each query is utilized to predict a
C-dimensional mask embedding and its class, P = {[f_i^s, cls_i]}; ... binary
mask predictions via a dot product between the mask embeddings and the
backbone's 1/4-scale feature map f^b followed by a sigmoid" (eq. 4). The
whole task head is ONE linear layer on the decoder's query states (Sec. 3.2,
Sec. 4 "we do not introduce architecture modifications except for
task-specific linear head"); the class logits and the mask embedding are two
slices of its output.

It also holds :func:`top_layer`, the heads' top (one linear layer or an
MLP). The wiring every GLID fine-tuning model shares (:class:`GLIDDecoded`,
:func:`build_query_decoder`, :func:`check_query_feat`) lives beside the
decoder, in :mod:`glid_mm.models.decoders.glid_decoded`; it is re-exported
here for old imports.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

# re-exported for old imports; new code imports them from glid_decoded
from glid_mm.models.decoders.glid_decoded import (GLIDDecoded,
                                                  build_query_decoder,
                                                  check_query_feat)
from glid_mm.registry import MODELS

__all__ = [
    'GLIDMaskPredictor', 'top_layer', 'GLIDDecoded', 'build_query_decoder',
    'check_query_feat'
]


def top_layer(in_channels: int,
              out_channels: int,
              mlp_layers: int = 1) -> nn.Module:
    """A GLID task head's top: one linear layer (``mlp_layers=1``, the
    paper's text: "task-specific linear head", Sec. 3.2 / 4) or mmdet's
    ``MLP`` of ``mlp_layers`` layers of width ``in_channels`` with ReLU
    between them, the shape of Mask2Former's mask embedding, DETR's box
    FFN and BinsFormer's bin heads, whose sizes at width 512 are what supp.
    Table 3's head sizes (0.5-1.3 M) suggest."""
    if not isinstance(mlp_layers, int) or mlp_layers < 1:
        raise ValueError(f'mlp_layers must be an int >= 1, got '
                         f'{mlp_layers!r}')
    if mlp_layers == 1:
        return nn.Linear(in_channels, out_channels)
    from mmdet.models.layers import MLP
    return MLP(in_channels, in_channels, out_channels, mlp_layers)


@MODELS.register_module(scopes=('mmdet', 'mmseg'))
class GLIDMaskPredictor(BaseModule):
    """One linear layer giving class logits and a mask embedding; eq. 4 masks.

    ``fc: R^{C_q} -> R^{K + 1 + C_m}`` on each query state; the first
    ``K + 1`` outputs are the class logits (the last one is "no object", as
    Mask2Former), the other ``C_m`` the mask embedding ``f^s``. Mask logits
    are ``<f^b, f^s>`` per pixel of the 1/4-scale feature ``f^b``; eq. 4's
    sigmoid is left to the losses and to inference (which apply it), so the
    returned masks are logits.

    Measured sizes at the paper's widths (``C_q = 512`` decoder, ``C_m =
    256`` BiFPN), next to supp. Table 3 (``tests/models/heads/
    test_glid_mask_predictor.py::test_head_sizes_of_ade20k_configs`` builds
    the ADE20K configs and checks these counts):

    ========  =======  ==========================  =============
    task      classes  this head (params)          supp. Table 3
    ========  =======  ==========================  =============
    Seg-sem   150      512 * 407 + 407 = 208,791   0.9 M
    Seg-ins   100      512 * 357 + 357 = 183,141   0.6 M
    Seg-pan   150      512 * 407 + 407 = 208,791   0.9 M
    ========  =======  ==========================  =============

    One linear layer from a 512-wide decoder cannot reach Table 3's sizes:
    0.9 M vs 0.6 M for 50 more classes would need ~6,000 inputs per class.
    The paper does not give the head's shape; we follow its text (one top
    linear layer) and report the difference.

    Args:
        in_channels (int): Query width ``C_q`` (decoder ``embed_dims``).
            Defaults to 512.
        num_classes (int): Number of classes ``K`` without "no object".
        mask_channels (int): Channels ``C_m`` of ``f^b`` (the neck width).
            Defaults to 256.
        mlp_layers (int): 1 = the single linear layer above (default, the
            paper's text); ``n > 1`` = a linear class layer and
            Mask2Former's ``n``-layer mask-embedding MLP of width ``C_q``
            (:func:`top_layer`): 734,103 parameters for ADE20K's 150
            classes at ``n = 3``, the size closest to Table 3 a
            Mask2Former-style head gives (still 18% under 0.9 M; see
            ``tools/benchmark/model_complexity.py``). Defaults to 1.
        init_cfg (dict, optional): Defaults to None (PyTorch's ``nn.Linear``
            init, as Mask2Former's class and mask layers).

    Shapes:
        query_states: ``[..., B, Q, C_q]``, e.g. ``[L, B, Q, C_q]``.
        mask_feature: ``[B, C_m, H, W]`` (``H, W`` = 1/4 of the input).
        returns ``cls_logits [..., B, Q, K + 1]``, ``mask_logits [..., B, Q,
        H, W]``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 512,
                 mask_channels: int = 256,
                 mlp_layers: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('num_classes', num_classes),
                            ('in_channels', in_channels), ('mask_channels',
                                                           mask_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.mask_channels = mask_channels
        self.mlp_layers = mlp_layers
        if mlp_layers == 1:
            self.fc = nn.Linear(in_channels, num_classes + 1 + mask_channels)
        else:
            self.fc_cls = nn.Linear(in_channels, num_classes + 1)
            self.mask_embed = top_layer(in_channels, mask_channels, mlp_layers)

    def forward(self, query_states: Tensor,
                mask_feature: Tensor) -> Tuple[Tensor, Tensor]:
        if query_states.dim() < 3 or query_states.shape[-1] != \
                self.in_channels:
            raise ValueError('query_states must be [..., B, Q, '
                             f'{self.in_channels}], got '
                             f'{tuple(query_states.shape)}')
        if (mask_feature.dim() != 4
                or mask_feature.shape[1] != self.mask_channels
                or mask_feature.shape[0] != query_states.shape[-3]):
            raise ValueError(
                f'mask_feature must be [{query_states.shape[-3]}, '
                f'{self.mask_channels}, H, W] (batch of query_states, '
                f'mask_channels), got {tuple(mask_feature.shape)}')
        if self.mlp_layers == 1:
            cls_logits, mask_embed = self.fc(query_states).split(
                [self.num_classes + 1, self.mask_channels], dim=-1)
        else:
            cls_logits = self.fc_cls(query_states)
            mask_embed = self.mask_embed(query_states)
        # eq. 4 before the sigmoid: <f^b, f^s> at every 1/4-scale pixel
        mask_logits = torch.einsum('...bqc,bchw->...bqhw', mask_embed,
                                   mask_feature)
        return cls_logits, mask_logits
