"""GLID's detection head: two linear layers on the query states (Sec. 3.2)."""
import contextlib
from typing import Dict, Iterator, List, Tuple

import torch
import torch.nn as nn
from mmdet.models.dense_heads import DETRHead
from mmdet.models.losses import QualityFocalLoss
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor

from glid_mm.models.heads.glid_mask_predictor import top_layer
from glid_mm.registry import MODELS


@MODELS.register_module(scopes=('mmdet', ))
class GLIDDETRHead(DETRHead):
    """DETR-style box head on GLID query states, with H-DETR hybrid matching.

    GLID Sec. 3.2 "Object detection": "each query is used to predict the
    bounding box and class of an object ... we follow DETR"; the task head is
    the top linear layer only (Sec. 4, "we do not introduce architecture
    modifications except for task-specific linear head"), so in place of
    DETR's 3-layer box FFN there are two linear layers on each query state:
    ``fc_cls`` (class logits, ``K + 1`` with DETR's softmax and "no object")
    and ``fc_reg`` (a box ``(cx, cy, w, h)`` normalised by the image size,
    through a sigmoid: DETR's parameterisation).

    Everything else is mmdet's :class:`DETRHead`: Hungarian matching
    (``train_cfg.assigner``, mmdet's ``HungarianAssigner`` and match costs),
    classification + L1 + GIoU losses on EVERY decoder block (deep
    supervision, keys ``loss_*`` and ``d{i}.loss_*``) and top-k inference.

    Hybrid matching (Sec. 4: "1,800 queries with hybrid matching [H-DETR]
    during training and 300 queries during evaluation"): the first
    ``num_queries`` queries are the one-to-one group, matched by the
    Hungarian assigner to the ground truth; the next ``num_queries_one2many``
    queries are the one-to-many group, matched in the same way to the ground
    truth repeated ``k_one2many`` times (H-DETR's Sec. 3.2; ``k = 6`` and
    weight ``lambda = 1`` are H-DETR's defaults, the paper does not restate
    them). Its losses are the same terms with the suffix ``_one2many``,
    scaled by ``lambda_one2many``. The two groups do not see each other in
    self-attention (:class:`GLIDDETR` builds the mask); evaluation decodes
    the one-to-one group only.

    Measured size at the paper's widths (``C = 512``, 80 COCO classes):
    ``512 * 81 + 81 + 512 * 4 + 4 = 43,605`` parameters, against 0.5 M in
    supp. Table 3 (``tests/models/heads/test_glid_detr_head.py``): two
    linear layers on a 512-wide state cannot reach 0.5 M; the paper does not
    give the head's shape, we follow its text and report the difference.

    Args:
        num_classes (int): Object classes ``K``.
        embed_dims (int): Query width ``C`` (decoder ``embed_dims``).
            Defaults to 512 (Sec. 4).
        num_queries (int): One-to-one queries, the only ones at evaluation.
            Defaults to 300.
        num_queries_one2many (int): One-to-many queries used in training
            only; 0 turns hybrid matching off. Defaults to 1500.
        k_one2many (int): Repeats of the ground truth for the one-to-many
            group. Defaults to 6 (H-DETR).
        lambda_one2many (float): Weight of the one-to-many losses. Defaults
            to 1.0 (H-DETR).
        mlp_layers (int): Box layers: 1 linear layer (default, the paper's
            text) or DETR's box MLP of that many layers of width ``C``
            (:func:`top_layer`; 568,917 parameters with 80 classes at 3,
            14% over Table 3's 0.5 M). Defaults to 1.
        **kwargs: :class:`mmdet.models.DETRHead`'s ``loss_cls``,
            ``loss_bbox``, ``loss_iou``, ``sync_cls_avg_factor``,
            ``train_cfg``, ``test_cfg``, ``init_cfg`` (``num_reg_fcs`` is
            fixed: there is no box FFN).

    Shapes:
        hidden_states: ``[L, B, Q, C]`` with ``Q = num_queries (+
        num_queries_one2many in training)``.
        forward returns ``cls [L, B, Q, K + 1]`` and ``boxes [L, B, Q, 4]``.
    """

    def __init__(self,
                 num_classes: int,
                 embed_dims: int = 512,
                 num_queries: int = 300,
                 num_queries_one2many: int = 1500,
                 k_one2many: int = 6,
                 lambda_one2many: float = 1.0,
                 mlp_layers: int = 1,
                 **kwargs) -> None:
        for name, value in (('num_classes', num_classes), ('embed_dims',
                                                           embed_dims),
                            ('num_queries', num_queries), ('k_one2many',
                                                           k_one2many)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        if not isinstance(num_queries_one2many,
                          int) or num_queries_one2many < 0:
            raise ValueError('num_queries_one2many must be an int >= 0, got '
                             f'{num_queries_one2many!r}')
        if lambda_one2many < 0:
            raise ValueError(
                f'lambda_one2many must be >= 0, got {lambda_one2many}')
        if 'num_reg_fcs' in kwargs:
            raise TypeError('GLIDDETRHead sets its box layers with '
                            'mlp_layers (1 = one linear layer, GLID Sec. 4; '
                            '3 = DETR\'s box FFN): drop num_reg_fcs')
        if not isinstance(mlp_layers, int) or mlp_layers < 1:
            raise ValueError(f'mlp_layers must be an int >= 1, got '
                             f'{mlp_layers!r}')
        self.mlp_layers = mlp_layers
        self.num_queries = num_queries
        self.num_queries_one2many = num_queries_one2many
        self.k_one2many = k_one2many
        self.lambda_one2many = float(lambda_one2many)
        loss_cls, bg_cls_weight = self._detr_class_weight(
            kwargs.pop('loss_cls', self._default_loss_cls()), num_classes)
        super().__init__(
            num_classes=num_classes,
            embed_dims=embed_dims,
            loss_cls=loss_cls,
            **kwargs)
        # DETRHead resets it to 0 for subclasses; it enters cls_avg_factor
        self.bg_cls_weight = bg_cls_weight

    @staticmethod
    def _default_loss_cls() -> dict:
        """DETR's softmax cross-entropy with "no object" weight 0.1."""
        return dict(
            type='CrossEntropyLoss',
            bg_cls_weight=0.1,
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=1.0)

    @staticmethod
    def _detr_class_weight(loss_cls: dict, num_classes: int):
        """DETR's per-class weights ``[1] * K + [bg_cls_weight]``.

        mmdet's :class:`DETRHead` applies this only when ``type(self) is
        DETRHead`` (its subclasses use sigmoid focal losses); GLID follows
        DETR's softmax loss (Sec. 3.2), so the subclass does it here, with
        the same rule: ``bg_cls_weight`` defaults to ``class_weight``.

        Returns:
            tuple: the loss config to build and ``bg_cls_weight`` (0 for a
            sigmoid loss).
        """
        if not isinstance(loss_cls, dict) or 'type' not in loss_cls:
            raise TypeError('loss_cls must be a config dict with a "type", '
                            f'got {loss_cls!r}')
        loss_cls = dict(loss_cls)
        class_weight = loss_cls.get('class_weight', None)
        if loss_cls.get('use_sigmoid', False) or class_weight is None:
            loss_cls.pop('bg_cls_weight', None)
            return loss_cls, 0.0
        if not isinstance(class_weight, float):
            raise TypeError('loss_cls.class_weight must be a float (one '
                            f'weight for all classes), got {class_weight!r}')
        bg = loss_cls.pop('bg_cls_weight', class_weight)
        if not isinstance(bg, float):
            raise TypeError(
                f'loss_cls.bg_cls_weight must be a float, got {bg!r}')
        weight = [class_weight] * num_classes + [bg]
        loss_cls['class_weight'] = weight
        return loss_cls, bg

    @property
    def num_queries_total(self) -> int:
        """Queries the decoder holds: one-to-one + one-to-many."""
        return self.num_queries + self.num_queries_one2many

    def _init_layers(self) -> None:
        """Class logits (linear) and the box (linear, or DETR's MLP)."""
        self.fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        self.fc_reg = top_layer(self.embed_dims, 4, self.mlp_layers)

    def forward(self, hidden_states: Tensor) -> Tuple[Tensor, Tensor]:
        """Class logits ``[L, B, Q, K + 1]`` and sigmoid boxes ``[L, B, Q,
        4]`` (normalised ``cx, cy, w, h``)."""
        if hidden_states.dim(
        ) != 4 or hidden_states.shape[-1] != self.embed_dims:
            raise ValueError(
                f'hidden_states must be [L, B, Q, {self.embed_dims}] '
                f'(embed_dims), got {tuple(hidden_states.shape)}')
        return self.fc_cls(hidden_states), self.fc_reg(hidden_states).sigmoid()

    def loss(self, hidden_states: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """One-to-one losses, plus the one-to-many ones when the decoder
        returned that group (training).

        Args:
            hidden_states (Tensor): ``[L, B, Q, C]``; ``Q`` is
                ``num_queries`` or ``num_queries_total``.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``.
        """
        Q = hidden_states.shape[2]
        if Q not in (self.num_queries, self.num_queries_total):
            raise ValueError(
                f'got {Q} query states; expected num_queries='
                f'{self.num_queries} or, with the one-to-many group, '
                f'{self.num_queries_total}')
        metas = [s.metainfo for s in batch_data_samples]
        gts = [s.gt_instances for s in batch_data_samples]
        cls_scores, bbox_preds = self(hidden_states)
        n = self.num_queries
        losses = self.loss_by_feat(cls_scores[:, :, :n], bbox_preds[:, :, :n],
                                   gts, metas)
        if Q > n and self.num_queries_one2many > 0:
            repeated = [self._repeat(gt) for gt in gts]
            many = self.loss_by_feat(cls_scores[:, :, n:],
                                     bbox_preds[:, :, n:], repeated, metas)
            for key, value in many.items():
                losses[f'{key}_one2many'] = value * self.lambda_one2many
        return losses

    @contextlib.contextmanager
    def local_normalisers(self) -> Iterator[None]:
        """Within this context the losses are normalised by this process's
        own positive count, with no collective.

        mmdet's ``DETRHead.loss_by_feat_single`` all-reduces the number of
        positives (and, with ``sync_cls_avg_factor``, the class
        normaliser) inside every call. Under SIMT
        (:class:`GPPFMultiTaskModel`) the other processes may run other
        tasks, so that collective would pair with theirs (or hang); each
        process then normalises its own loss and the head's gradient is
        averaged over the processes of its task (GPPF Sec. 3.2).
        """
        previous, self._local = getattr(self, '_local', False), True
        try:
            yield
        finally:
            self._local = previous

    def loss_by_feat_single(self, cls_scores: Tensor, bbox_preds: Tensor,
                            batch_gt_instances, batch_img_metas):
        """mmdet's single-block DETR losses; within
        :meth:`local_normalisers` the same computation with this
        process's normalisers (written out here because mmdet's method has
        no hook for them; a test compares both in one process, where they
        must agree)."""
        if not getattr(self, '_local', False):
            return super().loss_by_feat_single(cls_scores, bbox_preds,
                                               batch_gt_instances,
                                               batch_img_metas)
        num_imgs = cls_scores.size(0)
        (labels, label_weights, bbox_targets, bbox_weights, num_pos,
         num_neg) = self.get_targets([cls_scores[i] for i in range(num_imgs)],
                                     [bbox_preds[i] for i in range(num_imgs)],
                                     batch_gt_instances, batch_img_metas)
        labels, label_weights = torch.cat(labels), torch.cat(label_weights)
        bbox_targets = torch.cat(bbox_targets)
        bbox_weights = torch.cat(bbox_weights)
        cls_scores = cls_scores.reshape(-1, self.cls_out_channels)
        cls_avg_factor = max(num_pos * 1.0 + num_neg * self.bg_cls_weight, 1)
        if isinstance(self.loss_cls, QualityFocalLoss):
            pos = ((labels >= 0) &
                   (labels < self.num_classes)).nonzero().squeeze(1)
            scores = label_weights.new_zeros(labels.shape)
            scores[pos] = bbox_overlaps(
                bbox_cxcywh_to_xyxy(bbox_preds.reshape(-1, 4)[pos]).detach(),
                bbox_cxcywh_to_xyxy(bbox_targets[pos]),
                is_aligned=True)
            loss_cls = self.loss_cls(
                cls_scores, (labels, scores),
                label_weights,
                avg_factor=cls_avg_factor)
        else:
            loss_cls = self.loss_cls(
                cls_scores, labels, label_weights, avg_factor=cls_avg_factor)
        num_pos = max(float(num_pos), 1.)
        factors = torch.cat([
            pred.new_tensor([w, h, w, h]).unsqueeze(0).repeat(pred.size(0), 1)
            for (h, w), pred in zip((m['img_shape']
                                     for m in batch_img_metas), bbox_preds)
        ])
        bbox_preds = bbox_preds.reshape(-1, 4)
        loss_iou = self.loss_iou(
            bbox_cxcywh_to_xyxy(bbox_preds) * factors,
            bbox_cxcywh_to_xyxy(bbox_targets) * factors,
            bbox_weights,
            avg_factor=num_pos)
        loss_bbox = self.loss_bbox(
            bbox_preds, bbox_targets, bbox_weights, avg_factor=num_pos)
        return loss_cls, loss_bbox, loss_iou

    def _repeat(self, gt: InstanceData) -> InstanceData:
        """The ground truth repeated ``k_one2many`` times (H-DETR)."""
        boxes = InstanceData(bboxes=gt.bboxes, labels=gt.labels)
        return InstanceData.cat([boxes] * self.k_one2many)

    def predict(self,
                hidden_states: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> List[InstanceData]:
        """mmdet's DETR inference on the one-to-one queries of the last
        block (the one-to-many group, if present, is dropped)."""
        return super().predict(hidden_states[:, :, :self.num_queries],
                               batch_data_samples, rescale)

    @staticmethod
    def group_attn_mask(num_one2one: int,
                        num_one2many: int,
                        device=None) -> Tensor:
        """H-DETR's self-attention mask: True where a query of one group
        would attend to a query of the other, ``[Q, Q]``."""
        Q = num_one2one + num_one2many
        mask = torch.zeros(Q, Q, dtype=torch.bool, device=device)
        mask[:num_one2one, num_one2one:] = True
        mask[num_one2one:, :num_one2one] = True
        return mask
