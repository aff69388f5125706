"""GLID fine-tuned for instance / panoptic segmentation in mmdet."""
from typing import Optional

from mmdet.models.detectors import Mask2Former
from mmengine.config import ConfigDict
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.decoders.glid_wiring import GLIDWiringMixin
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmdet', ))
class GLIDMaskFormer(GLIDWiringMixin, Mask2Former):
    """mmdet's Mask2Former detector with GLID's pre-trained query decoder.

    GLID Sec. 3.2 "Image segmentation" and Sec. 4: Swin encoder -> BiFPN ->
    the pre-trained query decoder with ``M`` queries ``[CLS] + e_i`` (eq. 3)
    -> one linear head per query (:class:`GLIDMaskHead`, eq. 4). Training,
    inference and post-processing are mmdet's :class:`MaskFormer` code
    (``loss`` / ``predict`` / ``add_pred_to_datasample`` and
    :class:`MaskFormerFusionHead`), unchanged; only :meth:`extract_feat`
    adds the decoder (:class:`GLIDWiringMixin`), so the head receives
    ``GLIDDecoded(feats, query_states)``.

    The decoder is a model-level module (``decoder.*``), exactly as in the
    pre-training model :class:`GLID`: ``load_from`` a GLID pre-training
    checkpoint fills ``backbone``, ``neck`` and ``decoder`` (with the
    pre-trained ``[CLS]``) and leaves only ``panoptic_head.predictor`` and
    the zero-initialised ``decoder.queries.query_embed`` new; the
    pre-training ``head.*`` and mask tokens are reported as unexpected keys
    by mmengine and ignored.

    Class counts are set once, on ``panoptic_head``: they are copied into
    ``panoptic_fusion_head`` (a different explicit value is an error), as
    is the number of queries into ``decoder``.

    Args:
        backbone (dict): Encoder, e.g. mmpretrain's ``SwinTransformer`` with
            ``out_indices=(0, 1, 2, 3)``.
        neck (dict): :class:`BiFPN`.
        decoder (dict): :class:`GLIDDecoder` (``num_queries`` from the head).
        panoptic_head (dict): :class:`GLIDMaskHead`.
        panoptic_fusion_head (dict): mmdet's ``MaskFormerFusionHead``.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as
            :class:`mmdet.models.MaskFormer`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 decoder: dict,
                 panoptic_head: dict,
                 panoptic_fusion_head: dict = dict(
                     type='MaskFormerFusionHead'),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        panoptic_head = ConfigDict(panoptic_head)
        panoptic_fusion_head = ConfigDict(panoptic_fusion_head)
        for key in ('num_things_classes', 'num_stuff_classes'):
            if key not in panoptic_head:
                continue
            value = panoptic_head[key]
            given = panoptic_fusion_head.get(key, value)
            if given != value:
                raise ValueError(
                    f'panoptic_fusion_head.{key}={given} differs from '
                    f'panoptic_head.{key}={value}; set it on the head only')
            panoptic_fusion_head[key] = value
        super().__init__(
            backbone=backbone,
            neck=neck,
            panoptic_head=panoptic_head,
            panoptic_fusion_head=panoptic_fusion_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if (self.panoptic_fusion_head.num_things_classes,
                self.panoptic_fusion_head.num_stuff_classes) != (
                    self.num_things_classes, self.num_stuff_classes):
            raise ValueError('panoptic_fusion_head class counts differ from '
                             "panoptic_head's; set them on the head only")
        self.build_glid_decoder(decoder, 'panoptic_head')

    def extract_feat(self, batch_inputs: Tensor) -> GLIDDecoded:
        """Encoder, BiFPN and query decoder: ``[B, 3, H, W]`` ->
        ``GLIDDecoded(feats, query_states [L, B, M, C])``."""
        return self.glid_extract_feat(batch_inputs)
