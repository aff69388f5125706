"""GLID's mask-classification head as an mmseg decode head (semantic)."""
from typing import Optional

from mmseg.models.decode_heads import Mask2FormerHead as MMSegMask2FormerHead

from glid_mm.models.heads.glid_mask_head import (MASK2FORMER_LOSSES,
                                                 MASK2FORMER_TRAIN_CFG,
                                                 GLIDMaskHead)
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmseg', ))
class GLIDMaskSegHead(MMSegMask2FormerHead, GLIDMaskHead):
    """GLID semantic segmentation by mask classification (Sec. 3.2, eq. 4).

    The same head as the mmdet :class:`GLIDMaskHead` (same ``__init__``,
    same ``forward`` and so the same :class:`GLIDMaskPredictor`: one linear
    layer, eq. 4 masks, every decoder block supervised), with mmseg's
    Mask2Former glue taken from :class:`mmseg.models.decode_heads.
    Mask2FormerHead` through the method resolution order: ``loss`` turns
    ``gt_sem_seg`` into one mask per present class (``ignore_index``
    dropped) before mmdet's Hungarian matching and point-sampled losses, and
    ``predict`` does Mask2Former's semantic inference
    ``einsum(softmax(cls)[..., :-1], sigmoid(mask))`` at the padded input
    size. Nothing of mmseg's head ``__init__`` runs (it would add a second,
    unused class layer).

    Use it inside :class:`GLIDEncoderDecoder`, which owns the decoder and
    passes ``GLIDDecoded(feats, query_states)`` as ``x``.

    Args:
        num_classes (int): Semantic classes ``K`` (at least 2: one class
            would make mmseg threshold the output as a binary map).
            Defaults to 150 (ADE20K).
        num_queries (int): Queries ``M``; 100 for semantic segmentation in
            the paper (Sec. 4). Defaults to 100.
        ignore_index (int): Label ignored by the loss. Defaults to 255.
        align_corners (bool): Read by mmseg's segmentor when resizing
            logits. Defaults to False.
        train_cfg (dict, optional): Matching and point sampling as
            :class:`GLIDMaskHead`. Defaults to Mask2Former's (Hungarian
            assigner with class 2 / BCE 5 / dice 5 costs, 12,544 points).
        in_channels, mask_channels, mask_feat_level, mlp_layers, loss_cls,
        loss_mask, loss_dice, init_cfg: as :class:`GLIDMaskHead`; loss,
            assigner and sampler types resolve in mmdet's registries.

    Shapes:
        forward: as :class:`GLIDMaskHead`.
        predict returns ``seg_logits [B, K, H_pad, W_pad]``, class scores
        in ``[0, 1]`` (not normalised over classes).
    """

    def __init__(self,
                 num_classes: int = 150,
                 num_queries: int = 100,
                 ignore_index: int = 255,
                 align_corners: bool = False,
                 in_channels: int = 512,
                 mask_channels: int = 256,
                 mask_feat_level: int = 0,
                 mlp_layers: int = 1,
                 loss_cls: dict = MASK2FORMER_LOSSES['loss_cls'],
                 loss_mask: dict = MASK2FORMER_LOSSES['loss_mask'],
                 loss_dice: dict = MASK2FORMER_LOSSES['loss_dice'],
                 train_cfg: Optional[dict] = MASK2FORMER_TRAIN_CFG,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError('num_classes must be an int >= 2, got '
                             f'{num_classes!r}')
        GLIDMaskHead.__init__(
            self,
            num_things_classes=num_classes,
            num_stuff_classes=0,
            num_queries=num_queries,
            in_channels=in_channels,
            mask_channels=mask_channels,
            mask_feat_level=mask_feat_level,
            mlp_layers=mlp_layers,
            loss_cls=loss_cls,
            loss_mask=loss_mask,
            loss_dice=loss_dice,
            train_cfg=train_cfg,
            test_cfg=None,
            init_cfg=init_cfg)
        # attributes mmseg's segmentor and Mask2Former glue read
        self.out_channels = num_classes
        self.ignore_index = ignore_index
        self.align_corners = align_corners
