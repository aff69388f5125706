"""GLID's keypoint head: one heatmap per query (Sec. 3.2, eq. 8)."""
from typing import Optional

import torch
from mmpose.models.heads import HeatmapHead
from mmpose.models.heads.base_head import BaseHead
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import GLIDDecoded, check_query_feat
from glid_mm.models.heads.glid_mask_predictor import top_layer
from glid_mm.registry import MODELS, build_nested


@MODELS.register_module(scopes=('mmpose', ))
class GLIDPoseHead(HeatmapHead):
    """Top-down keypoint heatmaps from GLID query states (Sec. 3.2, eq. 8).

    GLID Sec. 3.2 "Pose estimation": "each query is used to output a heatmap
    of a key point"; ONE linear layer ``fc: R^{C_q} -> R^{C_f}`` turns query
    ``k``'s state into ``f^k_k`` and the heatmap is ``P^k = <f^b, f^k>``
    over the neck's 1/4-scale map ``f^b`` (eq. 8, no activation), so a
    256x192 input gives 64x48 heatmaps, the size of mmpose's codecs
    (``MSRAHeatmap`` / ``UDPHeatmap`` with 192x256 -> 48x64).

    Everything else is mmpose's :class:`HeatmapHead`, inherited unchanged:
    ``loss`` (codec targets ``gt_fields.heatmaps``, ``keypoint_weights``,
    PCK accuracy), ``predict`` with flip test (``flip_heatmaps`` with the
    dataset's ``flip_indices``, ``test_cfg.flip_mode`` / ``shift_heatmap``)
    and ``decode`` through the codec. Only the last decoder block is
    supervised (ViTPose has one output and the paper names no deep
    supervision for pose).

    Loss: the paper uses smooth L1 ([16], Fast R-CNN, beta 1); the default
    is mmpose's ``SmoothL1Loss(use_target_weight=True)``, which masks
    invisible keypoints. Note that with beta 1 and targets in ``[0, 1]``,
    smooth L1 equals half the squared error wherever ``|pred - gt| < 1``;
    ``loss=dict(type='KeypointMSELoss', use_target_weight=True)`` is
    mmpose's (and ViTPose's) choice.

    Use it inside :class:`GLIDTopdownPoseEstimator`, which owns the decoder
    (built with ``num_keypoints`` queries) and passes ``GLIDDecoded(feats,
    query_states)``.

    Measured size at the paper's widths (``C_q = 512``, ``C_f = 256``):
    ``512 * 256 + 256 = 131,328`` parameters vs 0.6 M in supp. Table 3
    (``test_glid_pose_head.py::test_head_size_of_coco_config``); the paper
    does not give the head's shape, we follow its text (one top linear
    layer) and report the difference.

    Args:
        num_keypoints (int): Keypoints ``K`` = queries ``M``. Defaults to 17
            (COCO, Sec. 4 "17 queries").
        in_channels (int): Query width ``C_q``. Defaults to 512.
        feat_channels (int): Channels ``C_f`` of ``f^b``. Defaults to 256.
        feat_level (int): Index of ``f^b`` among the neck outputs. Defaults
            to 0 (1/4 scale).
        loss (dict): mmpose heatmap loss, called as ``loss(pred, gt,
            keypoint_weights)``. Defaults to smooth L1 (see above).
        decoder (dict, optional): mmpose keypoint codec for ``decode``.
            Defaults to None (then ``predict`` cannot decode).
        mlp_layers (int): 1 = one linear layer to the keypoint embedding
            (default, the paper's text); ``n > 1`` = an ``n``-layer MLP of
            width ``C_q`` (:func:`top_layer`; 656,640 parameters at
            ``n = 3``, within 10% of Table 3's 0.6 M). Defaults to 1.
        init_cfg (dict, optional): Defaults to None (PyTorch's
            ``nn.Linear`` init).

    Shapes:
        x.query_states: ``[L, B, K, C_q]``; ``x.feats[feat_level]``:
        ``[B, C_f, H / 4, W / 4]``.
        forward returns heatmaps ``[B, K, H / 4, W / 4]``.
    """

    def __init__(self,
                 num_keypoints: int = 17,
                 in_channels: int = 512,
                 feat_channels: int = 256,
                 feat_level: int = 0,
                 loss: dict = dict(
                     type='SmoothL1Loss', use_target_weight=True),
                 decoder: Optional[dict] = None,
                 mlp_layers: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        # HeatmapHead.__init__ would build deconv / conv layers GLID does
        # not have: only BaseModule's init runs.
        BaseHead.__init__(self, init_cfg=init_cfg)
        for name, value in (('num_keypoints', num_keypoints),
                            ('in_channels', in_channels), ('feat_channels',
                                                           feat_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        if not isinstance(feat_level, int) or feat_level < 0:
            raise ValueError(
                f'feat_level must be an int >= 0, got {feat_level!r}')
        if not isinstance(loss, dict) or 'type' not in loss:
            raise TypeError(
                f'loss must be a config dict with a "type", got {loss!r}')
        self.num_keypoints = num_keypoints
        self.in_channels = in_channels
        self.out_channels = num_keypoints
        self.feat_channels = feat_channels
        self.feat_level = feat_level
        self.loss_module = build_nested(loss, home='mmpose')
        self.decoder = (
            build_nested(decoder, 'KEYPOINT_CODECS', home='mmpose')
            if decoder is not None else None)
        # eq. 8: f^k_k = fc(query state k)
        self.fc = top_layer(in_channels, feat_channels, mlp_layers)

    @property
    def num_queries(self) -> int:
        """One query per keypoint."""
        return self.num_keypoints

    def heatmaps(self, query_states: Tensor, feat: Tensor) -> Tensor:
        """Eq. 8: ``<f^b, fc(q_k)>`` for query states of any leading shape.

        Args:
            query_states (Tensor): ``[..., B, K, C_q]``.
            feat (Tensor): ``f^b``, ``[B, C_f, h, w]``.

        Returns:
            Tensor: ``[..., B, K, h, w]``.
        """
        check_query_feat(query_states, feat, self.num_keypoints,
                         self.in_channels, self.feat_channels, 'num_keypoints')
        return torch.einsum('...bkc,bchw->...bkhw', self.fc(query_states),
                            feat)

    def forward(self, feats: GLIDDecoded) -> Tensor:
        """Last decoder block's heatmaps, ``[B, K, H / 4, W / 4]``."""
        if not isinstance(feats, GLIDDecoded):
            raise TypeError('GLIDPoseHead takes GLIDDecoded(feats, '
                            'query_states) from GLIDTopdownPoseEstimator, '
                            f'got {type(feats).__name__}')
        if len(feats.feats) <= self.feat_level:
            raise ValueError(f'feat_level={self.feat_level} but the neck '
                             f'gave {len(feats.feats)} levels')
        return self.heatmaps(feats.query_states[-1],
                             feats.feats[self.feat_level])

    def loss(self,
             feats: GLIDDecoded,
             batch_data_samples,
             train_cfg: Optional[dict] = None) -> dict:
        """mmpose's :meth:`HeatmapHead.loss`, after a check that the codec's
        heatmap size is the 1/4-scale map's (a clear error instead of a
        broadcast error inside the loss)."""
        f = feats.feats[self.feat_level]
        hm = batch_data_samples[0].gt_fields.heatmaps
        if tuple(hm.shape[-2:]) != tuple(f.shape[-2:]):
            raise ValueError(
                f'target heatmaps are {tuple(hm.shape[-2:])} (h, w) but '
                f'the 1/4-scale feature is {tuple(f.shape[-2:])}; set the '
                "codec's heatmap_size to input_size / 4")
        return super().loss(feats, batch_data_samples, train_cfg or {})
