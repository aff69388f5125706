"""``GLIDWiringMixin``: GLID's fine-tuning wiring, backbone -> Bi-FPN ->
query decoder, the base of every GLID fine-tuning model
(:class:`GLIDMaskFormer`, :class:`GLIDMultiTaskMaskFormer`,
:class:`GLIDDETR`, :class:`GLIDEncoderDecoder` and
:class:`GLIDDepthEstimator`, :class:`GLIDTopdownPoseEstimator`).

No toolbox is imported here, so the module loads with any subset of them.
"""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import (GLIDDecoded,
                                                  build_query_decoder,
                                                  check_neck_feats)


class GLIDWiringMixin:
    """GLID's fine-tuning wiring: backbone -> Bi-FPN -> query decoder.

    GLID Sec. 3.1 "Architecture": the Swin encoder's four levels are fused
    by a Bi-FPN neck; the query decoder (``L`` blocks of cross-attention to
    one neck level in round robin, self-attention and FFN) refines ``M``
    queries ``[CLS] + e_i`` (eq. 3). Sec. 3.2: fine-tuning keeps encoder,
    neck and decoder as pre-trained and replaces only the top linear head
    (one per task). Every GLID fine-tuning model therefore has

    - ``backbone`` and ``neck``, built by its toolbox base class;
    - ``decoder``, a model-level :class:`GLIDDecoder` built here with the
      head's number of queries (:meth:`build_glid_decoder`), under the
      pre-training model's names, so ``load_from`` a GLID pre-training
      checkpoint fills ``backbone.*``, ``neck.*`` and ``decoder.*`` and
      only the head and the zero-initialised ``decoder.queries.query_embed``
      start new;
    - an ``extract_feat`` that runs the three (:meth:`glid_extract_feat`)
      and hands the head a :class:`GLIDDecoded`.

    The mixin goes first among the bases (``class GLIDMaskFormer(
    GLIDWiringMixin, Mask2Former)``); it has no ``__init__`` and no
    parameters of its own, defines no toolbox method (each model keeps its
    own ``extract_feat`` signature and calls :meth:`glid_extract_feat`), and
    adds nothing to the state dict.

    Tensors:
        inputs: ``[B, 3, H, W]`` images (person crops for pose).
        feats: tuple of ``[B, C, H_l, W_l]``, the neck's levels, fine to
            coarse (``feats[0]`` at 1/4 of the input).
        queries: ``[B, Q, C_q]`` (the decoder's fine-tuning queries
            ``[CLS] + e_i`` when not given).
        query_states: ``[L, B, Q, C_q]``, every decoder block's output.
    """

    def build_glid_decoder(self,
                           decoder: dict,
                           head_name: str,
                           queries_attr: str = 'num_queries',
                           requirement: Optional[str] = None) -> nn.Module:
        """Build ``self.decoder`` with the number of queries of a head.

        Args:
            decoder (dict): :class:`GLIDDecoder` config (``num_queries``
                comes from the head; see :func:`build_query_decoder`).
            head_name (str): Attribute holding the built head, e.g.
                ``'decode_head'``.
            queries_attr (str): The head's attribute giving ``Q``.
                Defaults to ``'num_queries'``.
            requirement (str, optional): What the error says the head
                needs. Defaults to ``queries_attr``.

        Returns:
            nn.Module: The decoder, also set as ``self.decoder``.

        Raises:
            TypeError: the head has no ``queries_attr``, or ``decoder`` is
                not a config dict with a ``type``.
            ValueError: ``decoder.num_queries`` differs from the head's.
        """
        head = getattr(self, head_name)
        if not hasattr(head, queries_attr):
            raise TypeError(f'{head_name} must be a GLID query head with '
                            f'{requirement or queries_attr}, got '
                            f'{type(head)}')
        self.decoder = build_query_decoder(decoder,
                                           getattr(head, queries_attr))
        return self.decoder

    def glid_neck_feats(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Encoder and Bi-FPN: ``[B, 3, H, W]`` -> tuple of
        ``[B, C, H_l, W_l]`` (fine to coarse)."""
        return tuple(self.neck(self.backbone(inputs)))

    def glid_decode(self, feats: Sequence[Tensor],
                    **decoder_kwargs) -> GLIDDecoded:
        """Query decoder on the neck's pyramid.

        Args:
            feats (Sequence[Tensor]): ``[B, C, H_l, W_l]`` per level.
            **decoder_kwargs: Passed to ``self.decoder``, e.g. ``queries
                [B, Q, C_q]``, ``self_attn_mask``, ``padding_mask``.

        Returns:
            GLIDDecoded: ``feats`` (as a tuple) and ``query_states
            [L, B, Q, C_q]``.
        """
        feats = check_neck_feats(feats)
        out = self.decoder(feats, **decoder_kwargs)
        return GLIDDecoded(feats, out['query_states'])

    def glid_extract_feat(self, inputs: Tensor) -> GLIDDecoded:
        """Encoder, Bi-FPN and query decoder (the fine-tuning queries).

        Args:
            inputs (Tensor): ``[B, 3, H, W]``.

        Returns:
            GLIDDecoded: ``feats`` (tuple of ``[B, C, H_l, W_l]``, fine to
            coarse) and ``query_states [L, B, Q, C_q]``.
        """
        return self.glid_decode(self.glid_neck_feats(inputs))
