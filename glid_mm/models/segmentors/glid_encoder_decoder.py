"""GLID fine-tuned for semantic segmentation in mmseg."""
from typing import List, Optional

from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.decoders.glid_wiring import GLIDWiringMixin
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmseg', ))
class GLIDEncoderDecoder(GLIDWiringMixin, EncoderDecoder):
    """mmseg's EncoderDecoder with GLID's pre-trained query decoder.

    GLID Sec. 3.2 / Sec. 4: Swin encoder -> BiFPN -> the pre-trained query
    decoder with ``M`` queries ``[CLS] + e_i`` (eq. 3) -> a one-linear-layer
    decode head (:class:`GLIDMaskSegHead`, eq. 4). Everything else (loss,
    whole / slide inference, resizing, ``IoUMetric`` inputs) is mmseg's
    :class:`EncoderDecoder`; only :meth:`extract_feat` adds the decoder
    (:class:`GLIDWiringMixin`), so the decode head receives
    ``GLIDDecoded(feats, query_states)``; an auxiliary head, if any,
    receives the neck's ``feats`` as usual.

    The decoder is model-level (``decoder.*``) as in the pre-training model
    :class:`GLID`, so ``load_from`` a GLID pre-training checkpoint loads
    ``backbone``, ``neck`` and ``decoder``; only ``decode_head.predictor``
    and the zero-initialised ``decoder.queries.query_embed`` start new.

    Args:
        backbone (dict): Encoder, e.g. mmpretrain's ``SwinTransformer`` with
            ``out_indices=(0, 1, 2, 3)``.
        decode_head (dict): :class:`GLIDMaskSegHead`.
        neck (dict): :class:`BiFPN`.
        decoder (dict): :class:`GLIDDecoder` (``num_queries`` from the head).
        auxiliary_head, train_cfg, test_cfg, data_preprocessor, init_cfg:
            as :class:`mmseg.models.EncoderDecoder`.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: dict,
                 decoder: dict,
                 auxiliary_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.build_glid_decoder(decoder, 'decode_head')

    def extract_feat(
            self,
            inputs: Tensor,
            batch_img_metas: Optional[List[dict]] = None) -> GLIDDecoded:
        """Encoder, BiFPN and query decoder: ``[B, 3, H, W]`` ->
        ``GLIDDecoded(feats, query_states [L, B, M, C])``.
        ``batch_img_metas`` is unused (GLID has no scene-class embedding);
        accepted because mmseg's ``DepthEstimator`` passes it."""
        return self.glid_extract_feat(inputs)

    def _auxiliary_head_forward_train(self, inputs: GLIDDecoded,
                                      data_samples: List) -> dict:
        return super()._auxiliary_head_forward_train(inputs.feats,
                                                     data_samples)
