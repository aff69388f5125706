"""GLID fine-tuned for top-down pose estimation in mmpose."""
from typing import Optional, Tuple

from mmpose.models.pose_estimators import TopdownPoseEstimator
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.decoders.glid_wiring import GLIDWiringMixin
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmpose', ))
class GLIDTopdownPoseEstimator(GLIDWiringMixin, TopdownPoseEstimator):
    """mmpose's top-down estimator with GLID's pre-trained query decoder.

    GLID Sec. 3.2 / Sec. 4: person crops -> Swin encoder -> BiFPN -> the
    pre-trained query decoder with 17 queries ``[CLS] + e_i`` (eq. 3), one
    per keypoint -> :class:`GLIDPoseHead` (eq. 8). Only
    :meth:`extract_feat` adds the decoder (:class:`GLIDWiringMixin`), so
    the head receives ``GLIDDecoded(feats, query_states)``; loss, flip test
    (mmpose runs ``extract_feat`` on the flipped crop and the head averages
    the flipped heatmaps), coordinate mapping back to the image and
    ``CocoMetric`` inputs are :class:`mmpose.models.TopdownPoseEstimator`'s.

    The decoder is model-level (``decoder.*``) as in the GLID pre-training
    model, so a pre-training checkpoint loads with ``load_from``; ``head.fc``
    and the zero-initialised ``e_i`` start new.

    :meth:`get_layer_depth` lets mmpretrain's
    ``LearningRateDecayOptimWrapperConstructor`` apply layer-wise lr decay
    (supp. Table 8: 0.8) over the Swin blocks; the BiFPN, decoder and head
    are "subsequent modules" at the full learning rate (mmpretrain's rule
    for everything after the encoder).

    Args:
        backbone (dict): Encoder with ``out_indices=(0, 1, 2, 3)``.
        neck (dict): :class:`BiFPN`.
        head (dict): :class:`GLIDPoseHead`.
        decoder (dict): :class:`GLIDDecoder` (``num_queries`` comes from the
            head).
        train_cfg, test_cfg, data_preprocessor, init_cfg, metainfo: as
            :class:`mmpose.models.TopdownPoseEstimator`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 decoder: dict,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 metainfo: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            metainfo=metainfo)
        self.build_glid_decoder(decoder, 'head')

    def extract_feat(self, inputs: Tensor) -> GLIDDecoded:
        """Encoder, BiFPN and query decoder: ``[B, 3, H, W]`` person crops
        -> ``GLIDDecoded(feats, query_states [L, B, K, C])``."""
        return self.glid_extract_feat(inputs)

    def get_layer_depth(self, param_name: str) -> Tuple[int, int]:
        """``(layer_depth, num_layers)`` of a parameter for layer-wise lr
        decay (mmpretrain's ``LearningRateDecayOptimWrapperConstructor``)."""
        if not hasattr(self.backbone, 'get_layer_depth'):
            raise NotImplementedError(
                f'{type(self.backbone).__name__} has no get_layer_depth; '
                'layer-wise lr decay needs e.g. mmpretrain.SwinTransformer')
        return self.backbone.get_layer_depth(param_name, 'backbone.')
