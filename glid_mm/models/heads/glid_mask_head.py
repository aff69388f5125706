"""GLID's mask-classification head for mmdet (instance / panoptic)."""
import contextlib
import copy
from typing import Iterator, List, Optional, Tuple

import torch
from mmcv.ops import point_sample
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.utils import get_uncertain_point_coords_with_randomness
from mmdet.utils import reduce_mean
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.heads.glid_mask_predictor import GLIDMaskPredictor
from glid_mm.registry import MODELS, build_nested

# Mask2Former's losses (mmdet / mmseg Mask2Former configs); the class weights
# are filled in by the head from its class count.
MASK2FORMER_LOSSES = dict(
    loss_cls=dict(
        type='CrossEntropyLoss',
        use_sigmoid=False,
        loss_weight=2.0,
        reduction='mean'),
    loss_mask=dict(
        type='CrossEntropyLoss',
        use_sigmoid=True,
        reduction='mean',
        loss_weight=5.0),
    loss_dice=dict(
        type='DiceLoss',
        use_sigmoid=True,
        activate=True,
        reduction='mean',
        naive_dice=True,
        eps=1.0,
        loss_weight=5.0))

# Mask2Former's matching and point sampling (its mmdet / mmseg configs)
MASK2FORMER_TRAIN_CFG = dict(
    num_points=12544,
    oversample_ratio=3.0,
    importance_sample_ratio=0.75,
    assigner=dict(
        type='HungarianAssigner',
        match_costs=[
            dict(type='ClassificationCost', weight=2.0),
            dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
            dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
        ]),
    sampler=dict(type='MaskPseudoSampler'))


def _mmdet_cfg(cfg: dict, name: str) -> dict:
    """Copy of ``cfg`` resolved in mmdet's registries (``_scope_='mmdet'``).

    The losses, assigner and sampler are called with mmdet's interfaces, so
    a plain ``type='CrossEntropyLoss'`` must mean mmdet's even when the
    model is built under mmseg's default scope (where it would otherwise
    resolve to mmseg's loss of the same name).
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'{name} must be a config dict with a "type", got '
                        f'{cfg!r}')
    cfg = copy.deepcopy(dict(cfg))
    cfg.setdefault('_scope_', 'mmdet')
    return cfg


@MODELS.register_module(scopes=('mmdet', ))
class GLIDMaskHead(Mask2FormerHead):
    """Mask classification from GLID query states (Sec. 3.2, eq. 3-4).

    Predictions: :class:`GLIDMaskPredictor` (one linear layer -> class
    logits + mask embedding; mask logits = ``<f^b, f^s>`` with the neck's
    1/4-scale map, eq. 4) applied to the output of EVERY decoder block, so
    every block is supervised (deep supervision as Mask2Former). Matching,
    targets, losses and inference are mmdet's Mask2Former code, inherited
    unchanged: Hungarian matching with class + point-sampled BCE + dice
    costs (``_get_targets_single``), point-sampled mask BCE + dice losses on
    12,544 uncertain points (``_loss_by_feat_single``), one loss set per
    block (``loss_by_feat``: ``loss_*`` for the last, ``d{i}.loss_*`` for
    the others), and ``predict`` returning the last block's logits for
    mmdet's :class:`MaskFormerFusionHead`.

    Design choices (the decoder lives in the model, not the head; which
    1/4-scale map is ``f^b``; no masked cross-attention): see
    ``docs/design.md``, "GLIDMaskHead". The head receives ``x =
    GLIDDecoded(feats, query_states)``.

    Args:
        num_things_classes (int): Thing classes. Defaults to 80.
        num_stuff_classes (int): Stuff classes (0 for instance
            segmentation). Defaults to 53.
        num_queries (int): Queries ``M``; the model's decoder is built with
            it. 200 for instance / panoptic in the paper (Sec. 4). Defaults
            to 200.
        in_channels (int): Query width (decoder ``embed_dims``). Defaults to
            512.
        mask_channels (int): Channels of the 1/4-scale map (neck width).
            Defaults to 256.
        mask_feat_level (int): Index of ``f^b`` among the neck outputs.
            Defaults to 0 (the 1/4 map).
        mlp_layers (int): :class:`GLIDMaskPredictor`'s top: 1 linear layer
            (default, the paper's text) or a mask-embedding MLP of that many
            layers (Mask2Former's shape). Defaults to 1.
        loss_cls, loss_mask, loss_dice (dict): mmdet losses; Mask2Former's
            defaults (CE with weight 2, sigmoid BCE weight 5, dice weight
            5). ``loss_cls.class_weight`` defaults to ``[1.0] * K + [0.1]``
            (no-object weight 0.1) so the class count is set in one place;
            a given one must have ``K + 1`` entries. Types resolve in mmdet.
        train_cfg (dict, optional): ``assigner``, ``sampler``,
            ``num_points``, ``oversample_ratio``, ``importance_sample_ratio``
            as :class:`Mask2FormerHead`.
        test_cfg (dict, optional): Passed on by the detector.
        init_cfg (dict, optional): Defaults to None.

    Shapes:
        x.feats: neck outputs ``[B, mask_channels, H_l, W_l]``, fine first.
        x.query_states: ``[L, B, M, in_channels]``.
        forward returns ``(cls [B, M, K + 1] * L, masks [B, M, H/4, W/4] *
        L)``, lists over decoder blocks.
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 num_queries: int = 200,
                 in_channels: int = 512,
                 mask_channels: int = 256,
                 mask_feat_level: int = 0,
                 mlp_layers: int = 1,
                 loss_cls: dict = MASK2FORMER_LOSSES['loss_cls'],
                 loss_mask: dict = MASK2FORMER_LOSSES['loss_mask'],
                 loss_dice: dict = MASK2FORMER_LOSSES['loss_dice'],
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        # Mask2FormerHead.__init__ builds a pixel decoder and a transformer
        # decoder that GLID replaces; start from BaseDenseHead as
        # Mask2FormerHead itself does.
        super(AnchorFreeHead, self).__init__(init_cfg=init_cfg)
        for name, value in (('num_things_classes', num_things_classes),
                            ('num_stuff_classes', num_stuff_classes)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(
                    f'{name} must be a non-negative int, got {value!r}')
        if num_things_classes + num_stuff_classes == 0:
            raise ValueError('num_things_classes + num_stuff_classes must be '
                             'positive, got 0')
        if not isinstance(num_queries, int) or num_queries <= 0:
            raise ValueError(
                f'num_queries must be a positive int, got {num_queries!r}')
        if not isinstance(mask_feat_level, int) or mask_feat_level < 0:
            raise ValueError('mask_feat_level must be a non-negative int, '
                             f'got {mask_feat_level!r}')
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.num_queries = num_queries
        self.mask_feat_level = mask_feat_level
        self.predictor = GLIDMaskPredictor(
            num_classes=self.num_classes,
            in_channels=in_channels,
            mask_channels=mask_channels,
            mlp_layers=mlp_layers)

        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            for key in ('assigner', 'sampler'):
                if key not in train_cfg:
                    raise KeyError(f'train_cfg needs "{key}" (as '
                                   'Mask2FormerHead), got keys '
                                   f'{sorted(train_cfg)}')
            self.assigner = build_nested(
                _mmdet_cfg(train_cfg['assigner'], 'train_cfg.assigner'),
                'TASK_UTILS')
            self.sampler = build_nested(
                _mmdet_cfg(train_cfg['sampler'], 'train_cfg.sampler'),
                'TASK_UTILS',
                default_args=dict(context=self))
            self.num_points = train_cfg.get('num_points', 12544)
            self.oversample_ratio = train_cfg.get('oversample_ratio', 3.0)
            self.importance_sample_ratio = train_cfg.get(
                'importance_sample_ratio', 0.75)

        loss_cls = _mmdet_cfg(loss_cls, 'loss_cls')
        if loss_cls.get('class_weight') is None:
            # Mask2Former: no-object class down-weighted to 0.1
            loss_cls['class_weight'] = [1.0] * self.num_classes + [0.1]
        if len(loss_cls['class_weight']) != self.num_classes + 1:
            raise ValueError(
                'loss_cls.class_weight needs num_classes + 1 = '
                f'{self.num_classes + 1} entries (last = no object), got '
                f'{len(loss_cls["class_weight"])}')
        self.class_weight = loss_cls['class_weight']
        self.loss_cls = build_nested(loss_cls)
        self.loss_mask = build_nested(_mmdet_cfg(loss_mask, 'loss_mask'))
        self.loss_dice = build_nested(_mmdet_cfg(loss_dice, 'loss_dice'))
        # mask-loss normaliser handed over by a caller that reduced it
        # beforehand (see ``given_mask_count``); None: all-reduce as mmdet
        self._given_mask_count: Optional[float] = None

    def init_weights(self) -> None:
        # skip Mask2FormerHead.init_weights (pixel / transformer decoders)
        super(AnchorFreeHead, self).init_weights()

    def loss_by_feat(self, all_cls_scores: List[Tensor],
                     all_mask_preds: List[Tensor], batch_gt_instances,
                     batch_img_metas: List[dict]) -> dict:
        """:meth:`MaskFormerHead.loss_by_feat` (one loss set per block)."""
        if not hasattr(self, 'assigner'):
            raise RuntimeError(f'{type(self).__name__} was built without '
                               'train_cfg (assigner, sampler), so it cannot '
                               'compute losses')
        return super().loss_by_feat(all_cls_scores, all_mask_preds,
                                    batch_gt_instances, batch_img_metas)

    @contextlib.contextmanager
    def given_mask_count(self, value: float) -> Iterator[None]:
        """Within this context the mask and dice losses are normalised by
        ``value`` instead of mmdet's ``reduce_mean(local mask count)``.

        ``Mask2FormerHead._loss_by_feat_single`` all-reduces its mask count
        inside every call. A model whose processes run different heads in
        one iteration (:class:`GLIDMultiTaskMaskFormer`, tasks split over
        the global batch) cannot let each head issue that collective: it
        would pair different tasks' counts across processes, or wait
        forever. Such a model reduces every task's count in one collective
        of its own and hands each head its value here (the global count
        divided by the world size: what ``reduce_mean`` returns when every
        process runs the head). ``'local'``: this process's own count, no
        collective (:meth:`local_normalisers`).
        """
        if value != 'local' and not value > 0:
            raise ValueError(f'mask count must be positive, got {value!r}')
        previous, self._given_mask_count = self._given_mask_count, value
        try:
            yield
        finally:
            self._given_mask_count = previous

    def local_normalisers(self):
        """Normalise by this process's own mask count, with no collective:
        what :class:`GPPFMultiTaskModel` asks of a task head under SIMT,
        where the other processes may run other tasks (GPPF Sec. 3.2: each
        process runs one task; the head's gradient is then averaged over
        the processes of its task)."""
        return self.given_mask_count('local')

    def _loss_by_feat_single(self, cls_scores: Tensor, mask_preds: Tensor,
                             batch_gt_instances: list,
                             batch_img_metas: List[dict]) -> Tuple[Tensor]:
        """Mask2Former's losses of one decoder block, in named steps.

        The same computation as ``Mask2FormerHead._loss_by_feat_single``
        (a test compares both on one input) with one change: the mask
        normaliser comes from :meth:`_mask_count`, which honours
        :meth:`given_mask_count`. mmdet offers no narrower hook for it
        (the all-reduce sits in the middle of that method), so the method
        is written out here; matching, targets, point sampling and the
        loss modules are mmdet's.

        Returns:
            tuple[Tensor]: ``loss_cls``, ``loss_mask``, ``loss_dice``.
        """
        num_imgs = cls_scores.size(0)
        (labels, label_weights, mask_targets, mask_weights,
         avg_factor) = self.get_targets(
             [cls_scores[i] for i in range(num_imgs)],
             [mask_preds[i]
              for i in range(num_imgs)], batch_gt_instances, batch_img_metas)
        loss_cls = self._class_loss(cls_scores, torch.stack(labels),
                                    torch.stack(label_weights))
        num_masks = self._mask_count(cls_scores, avg_factor)
        loss_mask, loss_dice = self._point_mask_losses(
            mask_preds[torch.stack(mask_weights) > 0], torch.cat(mask_targets),
            num_masks)
        return loss_cls, loss_mask, loss_dice

    def _class_loss(self, cls_scores: Tensor, labels: Tensor,
                    label_weights: Tensor) -> Tensor:
        """Weighted cross-entropy over every query, normalised by the sum
        of the class weights of the targets (matched class or no-object).

        Shapes: ``cls_scores [B, M, K + 1]``, ``labels`` / ``label_weights``
        ``[B, M]``.
        """
        labels = labels.flatten(0, 1)
        class_weight = cls_scores.new_tensor(self.class_weight)
        return self.loss_cls(
            cls_scores.flatten(0, 1),
            labels,
            label_weights.flatten(0, 1),
            avg_factor=class_weight[labels].sum())

    def _mask_count(self, cls_scores: Tensor, avg_factor: int) -> Tensor:
        """Normaliser of the mask and dice losses: the handed-over count
        (:meth:`given_mask_count`) or mmdet's mean of the per-process
        counts, at least 1."""
        if self._given_mask_count == 'local':
            count = cls_scores.new_tensor([float(avg_factor)])
        elif self._given_mask_count is not None:
            count = cls_scores.new_tensor([self._given_mask_count])
        else:
            count = reduce_mean(cls_scores.new_tensor([avg_factor]))
        return max(count, 1)

    def _point_mask_losses(self, mask_preds: Tensor, mask_targets: Tensor,
                           num_masks) -> Tuple[Tensor, Tensor]:
        """Mask BCE and dice on ``num_points`` uncertain points per matched
        mask (Mask2Former's importance sampling).

        Shapes: ``mask_preds`` / ``mask_targets`` ``[N_matched, h, w]``.
        """
        if mask_targets.shape[0] == 0:
            # zero match
            zero = mask_preds.sum()
            return zero, zero
        with torch.no_grad():
            points = get_uncertain_point_coords_with_randomness(
                mask_preds.unsqueeze(1), None, self.num_points,
                self.oversample_ratio, self.importance_sample_ratio)
            point_targets = point_sample(
                mask_targets.unsqueeze(1).float(), points).squeeze(1)
        point_preds = point_sample(mask_preds.unsqueeze(1), points).squeeze(1)
        loss_dice = self.loss_dice(
            point_preds, point_targets, avg_factor=num_masks)
        loss_mask = self.loss_mask(
            point_preds.reshape(-1),
            point_targets.reshape(-1),
            avg_factor=num_masks * self.num_points)
        return loss_mask, loss_dice

    def forward(self,
                x: GLIDDecoded,
                batch_data_samples=None) -> Tuple[List[Tensor], List[Tensor]]:
        """Per-block class and mask logits.

        Args:
            x (GLIDDecoded): ``feats`` (neck outputs) and ``query_states``
                ``[L, B, M, C_q]`` from the model's decoder.
            batch_data_samples: Unused (kept for mmdet's head interface).

        Returns:
            tuple[list[Tensor], list[Tensor]]: ``L`` class logits ``[B, M,
            K + 1]`` and ``L`` mask logits ``[B, M, H/4, W/4]``, first block
            first (the layout of :meth:`Mask2FormerHead.forward`).
        """
        if not isinstance(x, GLIDDecoded):
            raise TypeError(
                f'{type(self).__name__} takes GLIDDecoded(feats, '
                f'query_states) from a GLID model (GLIDMaskFormer / '
                f'GLIDEncoderDecoder), got {type(x).__name__}')
        if self.mask_feat_level >= len(x.feats):
            raise ValueError(f'mask_feat_level={self.mask_feat_level} but '
                             f'the neck gives {len(x.feats)} levels')
        if x.query_states.shape[-2] != self.num_queries:
            raise ValueError(f'query_states have {x.query_states.shape[-2]} '
                             f'queries, the head expects {self.num_queries}')
        cls_logits, mask_logits = self.predictor(x.query_states,
                                                 x.feats[self.mask_feat_level])
        return list(cls_logits.unbind(0)), list(mask_logits.unbind(0))
