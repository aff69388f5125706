"""GLID fine-tuned for monocular depth estimation in mmseg."""
from typing import List, Optional

from mmseg.models.segmentors import DepthEstimator
from torch import Tensor

from glid_mm.registry import MODELS
from ..heads.glid_mask_predictor import GLIDDecoded, build_query_decoder


@MODELS.register_module(scopes=('mmseg', ))
class GLIDDepthEstimator(DepthEstimator):
    """mmseg's DepthEstimator with GLID's pre-trained query decoder.

    GLID Sec. 3.2 / Sec. 4: Swin encoder -> BiFPN -> the pre-trained query
    decoder with ``M = 64`` queries ``[CLS] + e_i`` (eq. 3) -> the one-layer
    bins head :class:`GLIDDepthHead` (eq. 5-7). Wired like
    :class:`GLIDEncoderDecoder`: only :meth:`extract_feat` adds the decoder,
    so the decode head receives ``GLIDDecoded(feats, query_states)``; loss,
    whole / slide inference, flip handling, padding removal and the
    ``pred_depth_map`` that mmseg's ``DepthMetric`` reads are
    :class:`mmseg.models.DepthEstimator`'s. An auxiliary head, if any,
    receives the neck's ``feats``.

    The decoder is model-level (``decoder.*``), so ``load_from`` a GLID
    pre-training checkpoint loads ``backbone``, ``neck`` and ``decoder``;
    ``decode_head.fc`` and the zero-initialised ``e_i`` start new.

    Args:
        backbone (dict): Encoder with ``out_indices=(0, 1, 2, 3)``.
        decode_head (dict): :class:`GLIDDepthHead`.
        neck (dict): :class:`BiFPN`.
        decoder (dict): :class:`GLIDDecoder` (``num_queries`` comes from the
            head).
        auxiliary_head, train_cfg, test_cfg, data_preprocessor, init_cfg:
            as :class:`mmseg.models.DepthEstimator`. Use
            ``data_preprocessor.seg_pad_val=0`` so padded depth reads as
            invalid.

    Shapes:
        inputs: ``[B, 3, H, W]``; ``extract_feat`` returns ``GLIDDecoded``
        with ``query_states [L, B, M, C]``.
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
        if not hasattr(self.decode_head, 'num_queries'):
            raise TypeError('decode_head must be a GLID query head with '
                            f'num_queries, got {type(self.decode_head)}')
        self.decoder = build_query_decoder(decoder,
                                           self.decode_head.num_queries)

    def extract_feat(self,
                     inputs: Tensor,
                     batch_img_metas: Optional[List[dict]] = None
                     ) -> GLIDDecoded:
        """Encoder, BiFPN and query decoder (``batch_img_metas`` unused:
        GLID has no scene-class embedding)."""
        feats = tuple(self.neck(self.backbone(inputs)))
        out = self.decoder(feats)
        return GLIDDecoded(feats, out['query_states'])

    def _auxiliary_head_forward_train(self, inputs: GLIDDecoded,
                                      data_samples: List) -> dict:
        return super()._auxiliary_head_forward_train(inputs.feats,
                                                     data_samples)
