"""GLID fine-tuned for object detection in mmdet (Sec. 3.2, Sec. 4)."""
from typing import Dict, Optional, Tuple

import torch
from mmdet.models.detectors import DetectionTransformer
from mmdet.structures import OptSampleList
from torch import Tensor

from glid_mm.models.decoders.glid_wiring import GLIDWiringMixin
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmdet', ))
class GLIDDETR(GLIDWiringMixin, DetectionTransformer):
    """mmdet's DETR-style detector with GLID's pre-trained query decoder.

    GLID Sec. 3.2 "Object detection" / Sec. 4: Swin encoder -> BiFPN -> the
    pre-trained query decoder (queries ``[CLS] + e_i``, eq. 3) -> two linear
    layers (:class:`GLIDDETRHead`). Compared with mmdet's DETR there is no
    transformer encoder (the BiFPN fuses the levels) and the decoder attends
    to three neck levels in round robin (the pre-trained GLID decoder), so
    of :class:`DetectionTransformer`'s four steps only ``pre_transformer``
    (DETR's padding mask) and ``forward_decoder`` do work;
    ``forward_encoder`` and ``pre_decoder`` are empty steps. Loss and
    inference are mmdet's (``DetectionTransformer.loss`` / ``predict``,
    :class:`DETRHead`), so mmdet's data pipelines and ``CocoMetric`` work
    unchanged.

    Hybrid matching (Sec. 4, following H-DETR): in training the decoder runs
    ``num_queries + num_queries_one2many`` queries (default 300 + 1,500 =
    1,800), the two groups separated in self-attention; in evaluation only
    the first ``num_queries`` (300). Both counts live on the head; the
    decoder is built with their sum.

    The decoder is model-level (``decoder.*``) as in the GLID pre-training
    model, so ``load_from`` a pre-training checkpoint loads ``backbone``,
    ``neck`` and ``decoder``; the head and the zero-initialised ``e_i``
    start new. The decoder is built and run by :class:`GLIDWiringMixin`
    (``extract_feat`` stays mmdet's: backbone and neck only; the decoder
    runs in :meth:`forward_decoder` with DETR's padding mask).
    :meth:`init_weights` keeps mmdet's DETR rule out: the decoder
    initialises itself.

    Args:
        backbone (dict): Encoder with ``out_indices=(0, 1, 2, 3)``.
        neck (dict): :class:`BiFPN`.
        decoder (dict): :class:`GLIDDecoder` (``num_queries`` comes from the
            head).
        bbox_head (dict): :class:`GLIDDETRHead`.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as mmdet's
            :class:`DetectionTransformer`.

    Shapes:
        batch_inputs ``[B, 3, H, W]``; ``forward_transformer`` returns
        ``hidden_states [L, B, Q, C]``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 decoder: dict,
                 bbox_head: dict,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(bbox_head, dict):
            raise TypeError(f'bbox_head must be a config dict, got '
                            f'{bbox_head!r}')
        super().__init__(
            backbone=backbone,
            neck=neck,
            decoder=decoder,
            bbox_head=bbox_head,
            num_queries=bbox_head.get('num_queries', 300),
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)

    def _init_layers(self) -> None:
        """Build the GLID decoder with the head's total number of queries."""
        self.build_glid_decoder(
            self.decoder,
            'bbox_head',
            queries_attr='num_queries_total',
            requirement='num_queries / num_queries_one2many (e.g. '
            'GLIDDETRHead)')

    def init_weights(self) -> None:
        """BaseModule's initialisation (each part's own ``init_weights``);
        mmdet's DETR would re-initialise the decoder's matrices and its
        nonexistent encoder."""
        super(DetectionTransformer, self).init_weights()

    def pre_transformer(
            self,
            img_feats: Tuple[Tensor],
            batch_data_samples: OptSampleList = None) -> Tuple[Dict, Dict]:
        """DETR's padding mask, True on each image's batch padding.

        Returns:
            tuple: ``({}, dict(feats, padding_mask [B, H_in, W_in]))``;
            ``padding_mask`` is None when no image is padded.
        """
        feats = tuple(img_feats)
        padding_mask = None
        if batch_data_samples is not None:
            H, W = batch_data_samples[0].batch_input_shape
            shapes = [s.img_shape for s in batch_data_samples]
            if any(tuple(s[:2]) != (H, W) for s in shapes):
                padding_mask = feats[0].new_ones((len(shapes), H, W),
                                                 dtype=torch.bool)
                for i, (h, w) in enumerate(s[:2] for s in shapes):
                    padding_mask[i, :h, :w] = False
        return dict(), dict(feats=feats, padding_mask=padding_mask)

    def forward_encoder(self) -> Dict:
        """No transformer encoder in GLID (the BiFPN fuses the levels)."""
        return dict()

    def pre_decoder(self) -> Tuple[Dict, Dict]:
        """Nothing to prepare: the queries belong to the decoder."""
        return dict(), dict()

    def forward_decoder(self, feats: Tuple[Tensor],
                        padding_mask: Optional[Tensor]) -> Dict:
        """The GLID decoder on the one-to-one queries, plus the one-to-many
        group in training.

        Returns:
            dict: ``hidden_states [L, B, Q, C]`` (the head's input).
        """
        B = feats[0].shape[0]
        queries = self.decoder.queries.finetune_queries(B)
        head = self.bbox_head
        self_attn_mask = None
        if self.training and head.num_queries_one2many > 0:
            self_attn_mask = head.group_attn_mask(head.num_queries,
                                                  head.num_queries_one2many,
                                                  queries.device)
        else:
            queries = queries[:, :head.num_queries]
        decoded = self.glid_decode(
            feats,
            queries=queries,
            self_attn_mask=self_attn_mask,
            padding_mask=padding_mask)
        return dict(hidden_states=decoded.query_states)
