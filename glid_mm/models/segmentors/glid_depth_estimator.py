"""GLID fine-tuned for monocular depth estimation in mmseg."""
from mmseg.models.segmentors import DepthEstimator

from glid_mm.models.segmentors.glid_encoder_decoder import GLIDEncoderDecoder
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmseg', ))
class GLIDDepthEstimator(GLIDEncoderDecoder, DepthEstimator):
    """mmseg's DepthEstimator with GLID's pre-trained query decoder.

    GLID Sec. 3.2 / Sec. 4: Swin encoder -> BiFPN -> the pre-trained query
    decoder with ``M = 64`` queries ``[CLS] + e_i`` (eq. 3) -> the one-layer
    bins head :class:`GLIDDepthHead` (eq. 5-7). The GLID wiring is inherited
    from :class:`GLIDEncoderDecoder` (first in the MRO, before mmseg's
    ``DepthEstimator``): only :meth:`extract_feat` adds the decoder,
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
