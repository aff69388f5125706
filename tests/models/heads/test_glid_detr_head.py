"""GLIDDETRHead on its own: two linear layers, DETR's losses worked out by
hand on one query, H-DETR's one-to-many group and mask, argument checks.

The head inside the full GLIDDETR on real images is tested in
``tests/models/detectors/test_glid_detr.py``; here it is built alone with
tiny widths (no images, no backbone)."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import glid_mm  # noqa: F401
from glid_mm.models.heads.glid_detr_head import GLIDDETRHead
from glid_mm.registry import build_model

C = 8  # query width
K = 3  # classes
IMG = (40, 60)  # (h, w)

TRAIN_CFG = dict(
    assigner=dict(
        type='HungarianAssigner',
        match_costs=[
            dict(type='ClassificationCost', weight=1.),
            dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0)
        ]))


def _head(**kwargs):
    cfg = dict(
        type='GLIDDETRHead',
        num_classes=K,
        embed_dims=C,
        num_queries=4,
        num_queries_one2many=6,
        k_one2many=2,
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
        train_cfg=TRAIN_CFG,
        test_cfg=dict(max_per_img=3))
    cfg.update(kwargs)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return build_model(cfg)


def _sample(boxes, labels):
    s = DetDataSample(
        metainfo=dict(img_shape=IMG, ori_shape=IMG, scale_factor=(1., 1.)))
    s.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long))
    return s


def test_builds_in_mmdet_registry_with_two_linear_layers():
    head = _head()
    assert isinstance(head, GLIDDETRHead)
    assert isinstance(head.fc_cls, torch.nn.Linear)
    assert isinstance(head.fc_reg, torch.nn.Linear)
    assert head.fc_cls.weight.shape == (K + 1, C)  # softmax: K + no object
    assert head.fc_reg.weight.shape == (4, C)
    n = sum(p.numel() for p in head.parameters())
    assert n == C * (K + 1) + (K + 1) + C * 4 + 4
    assert head.num_queries_total == 10


def test_size_at_the_paper_widths():
    """The docstring's count: C = 512, 80 COCO classes (supp. Table 3 gives
    0.5 M; see the class docstring)."""
    head = _head(
        num_classes=80,
        embed_dims=512,
        num_queries=300,
        num_queries_one2many=1500,
        k_one2many=6)
    n = sum(p.numel() for p in head.parameters())
    assert n == 512 * 81 + 81 + 512 * 4 + 4 == 43_605


def test_forward_is_linear_then_sigmoid_boxes():
    torch.manual_seed(0)
    head = _head()
    hidden = torch.randn(2, 3, 10, C)  # [L, B, Q, C]
    cls, boxes = head(hidden)
    assert cls.shape == (2, 3, 10, K + 1) and boxes.shape == (2, 3, 10, 4)
    w, b = head.fc_cls.weight, head.fc_cls.bias
    torch.testing.assert_close(cls, hidden @ w.T + b)
    w, b = head.fc_reg.weight, head.fc_reg.bias
    torch.testing.assert_close(boxes, torch.sigmoid(hidden @ w.T + b))
    assert (boxes > 0).all() and (boxes < 1).all()


def test_detr_class_weights_and_sigmoid_variant():
    head = _head()
    assert head.bg_cls_weight == pytest.approx(0.1)
    assert list(head.loss_cls.class_weight) == pytest.approx([1.] * K + [.1])
    # bg_cls_weight defaults to class_weight (mmdet DETRHead's rule)
    head = _head(
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=False, class_weight=0.5))
    assert head.bg_cls_weight == pytest.approx(0.5)
    assert list(head.loss_cls.class_weight) == pytest.approx([.5] * (K + 1))
    # a sigmoid loss: no "no object" class, no background weight
    head = _head(
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, bg_cls_weight=0.1))
    assert head.bg_cls_weight == 0.0
    assert head.fc_cls.out_features == K


def test_losses_on_one_query_by_hand():
    """One one-to-one query, one ground-truth box: the match is forced and
    DETR's three terms can be computed from the head's outputs."""
    torch.manual_seed(0)
    head = _head(num_queries=1, num_queries_one2many=0)
    box, label = [6., 4., 30., 24.], 2
    sample = _sample([box], [label])
    hidden = torch.randn(1, 1, 1, C)  # L = 1: no deep-supervision keys
    losses = head.loss(hidden, [sample])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_iou'}
    cls, pred = head(hidden)
    logits, pred = cls[0, 0, 0], pred[0, 0, 0]
    # cross-entropy of the matched class, weight 1, avg factor 1 (no
    # negatives)
    ce = -torch.log_softmax(logits, -1)[label]
    torch.testing.assert_close(losses['loss_cls'], ce)
    # L1 on normalised (cx, cy, w, h), weight 5
    h, w = IMG
    gt = torch.tensor([(6 + 30) / 2 / w, (4 + 24) / 2 / h, 24 / w, 20 / h])
    torch.testing.assert_close(losses['loss_bbox'],
                               5 * (pred - gt).abs().sum())
    # GIoU on pixel boxes, weight 2
    scale = torch.tensor([w, h, w, h])
    p = bbox_cxcywh_to_xyxy(pred[None])[0] * scale
    g = torch.tensor(box)
    inter = (torch.min(p[2], g[2]) - torch.max(p[0], g[0])).clamp(min=0) * \
        (torch.min(p[3], g[3]) - torch.max(p[1], g[1])).clamp(min=0)
    area_p = (p[2] - p[0]) * (p[3] - p[1])
    area_g = (g[2] - g[0]) * (g[3] - g[1])
    union = area_p + area_g - inter
    hull = (torch.max(p[2], g[2]) - torch.min(p[0], g[0])) * \
        (torch.max(p[3], g[3]) - torch.min(p[1], g[1]))
    giou = inter / union - (hull - union) / hull
    torch.testing.assert_close(
        losses['loss_iou'], 2 * (1 - giou), rtol=1e-4, atol=1e-5)


def test_no_object_weight_in_the_class_loss():
    """Two queries, no ground truth: both are "no object" (label K) with
    weight 0.1 each, averaged by 2 * 0.1 (DETR's cls_avg_factor)."""
    torch.manual_seed(0)
    head = _head(num_queries=2, num_queries_one2many=0)
    sample = _sample([], [])
    hidden = torch.randn(1, 1, 2, C)
    losses = head.loss(hidden, [sample])
    cls, _ = head(hidden)
    ce = -torch.log_softmax(cls[0, 0], -1)[:, K]
    expected = (0.1 * ce).sum() / max(2 * 0.1, 1)
    torch.testing.assert_close(losses['loss_cls'], expected)
    assert losses['loss_bbox'] == 0 and losses['loss_iou'] == 0


def test_deep_supervision_and_one2many_keys():
    torch.manual_seed(0)
    head = _head()
    sample = _sample([[2., 3., 20., 30.], [30., 5., 55., 35.]], [0, 1])
    hidden = torch.randn(3, 1, 10, C, requires_grad=True)
    losses = head.loss(hidden, [sample])
    terms = ('loss_cls', 'loss_bbox', 'loss_iou')
    expected = set()
    for term in terms:
        for prefix in ('', 'd0.', 'd1.'):
            expected |= {prefix + term, prefix + term + '_one2many'}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    # evaluation-sized states (one-to-one only): no one-to-many terms
    only = head.loss(hidden[:, :, :4], [sample])
    assert set(only) == {k for k in expected if 'one2many' not in k}
    for key, value in only.items():
        torch.testing.assert_close(value, losses[key])
    # the one-to-many loss reaches only its own queries' states
    sum(v for k, v in losses.items() if 'one2many' in k).backward()
    assert hidden.grad[:, :, :4].abs().sum() == 0
    assert hidden.grad[:, :, 4:].abs().sum() > 0


def test_one2many_is_the_loss_on_repeated_ground_truth_times_lambda():
    torch.manual_seed(0)
    sample = _sample([[2., 3., 20., 30.]], [1])
    hidden = torch.randn(1, 1, 10, C)
    head = _head(lambda_one2many=0.5)
    repeated = head._repeat(sample.gt_instances)
    assert len(repeated) == 2  # k_one2many copies
    assert repeated.labels.tolist() == [1, 1]
    assert torch.equal(repeated.bboxes,
                       sample.gt_instances.bboxes.repeat(2, 1))
    losses = head.loss(hidden, [sample])
    cls, boxes = head(hidden)
    manual = head.loss_by_feat(cls[:, :, 4:], boxes[:, :, 4:], [repeated],
                               [sample.metainfo])
    for key, value in manual.items():
        torch.testing.assert_close(losses[f'{key}_one2many'], 0.5 * value)


def test_no_hybrid_group_when_num_queries_one2many_is_zero():
    torch.manual_seed(0)
    head = _head(num_queries_one2many=0)
    assert head.num_queries_total == 4
    losses = head.loss(
        torch.randn(1, 1, 4, C), [_sample([[1., 1., 9., 9.]], [0])])
    assert not [k for k in losses if 'one2many' in k]


def test_group_attn_mask_by_hand():
    mask = GLIDDETRHead.group_attn_mask(2, 3)
    expected = torch.tensor([
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1],
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
    ],
                            dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert not GLIDDETRHead.group_attn_mask(3, 0).any()


def test_predict_uses_the_one2one_queries_only():
    torch.manual_seed(0)
    head = _head()
    head.eval()
    hidden = torch.randn(2, 1, 10, C)
    sample = _sample([[2., 3., 20., 30.]], [1])
    with torch.no_grad():
        a, = head.predict(hidden, [sample], rescale=False)
        changed = hidden.clone()
        changed[:, :, 4:] += 3.0  # the one-to-many group
        b, = head.predict(changed, [sample], rescale=False)
        c, = head.predict(hidden[:, :, :4], [sample], rescale=False)
    assert len(a) == 3  # test_cfg.max_per_img
    for other in (b, c):
        assert torch.equal(a.bboxes, other.bboxes)
        assert torch.equal(a.scores, other.scores)
        assert torch.equal(a.labels, other.labels)
    assert (a.labels < K).all()
    h, w = IMG
    assert (a.bboxes[:, 0::2] >= 0).all() and (a.bboxes[:, 0::2] <= w).all()
    assert (a.bboxes[:, 1::2] >= 0).all() and (a.bboxes[:, 1::2] <= h).all()
    # the scores are the last block's softmax without "no object"
    cls, _ = head(hidden)
    probs = cls[-1, 0, :4].softmax(-1)[:, :K]
    top = probs.flatten().topk(3).values
    torch.testing.assert_close(a.scores, top)


def test_mlp_layers_box_mlp():
    head = _head(mlp_layers=3)
    assert len(head.fc_reg.layers) == 3
    _, boxes = head(torch.randn(1, 1, 10, C))
    assert boxes.shape == (1, 1, 10, 4)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(num_classes=0), ValueError, 'num_classes must be a positive int'),
    (dict(embed_dims=-1), ValueError, 'embed_dims must be a positive int'),
    (dict(num_queries=0), ValueError, 'num_queries must be a positive int'),
    (dict(k_one2many=0), ValueError, 'k_one2many must be a positive int'),
    (dict(num_queries=2.0), ValueError, 'num_queries must be a positive'),
    (dict(num_queries_one2many=-1), ValueError,
     r'num_queries_one2many must be an int >= 0'),
    (dict(lambda_one2many=-0.5), ValueError, 'lambda_one2many must be >= 0'),
    (dict(num_reg_fcs=2), TypeError, 'drop num_reg_fcs'),
    (dict(mlp_layers=0), ValueError, r'mlp_layers must be an int >= 1'),
    (dict(loss_cls=dict(use_sigmoid=False)), TypeError,
     'loss_cls must be a config dict with a "type"'),
    (dict(loss_cls=dict(type='CrossEntropyLoss', class_weight=[1., 2.])),
     TypeError, 'class_weight must be a float'),
    (dict(
        loss_cls=dict(
            type='CrossEntropyLoss', class_weight=1., bg_cls_weight=1)),
     TypeError, 'bg_cls_weight must be a float'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        _head(**kwargs)


def test_bad_inputs():
    head = _head()
    with pytest.raises(ValueError, match=r'hidden_states must be \[L, B, Q'):
        head(torch.randn(1, 10, C))
    with pytest.raises(ValueError, match=r'hidden_states must be \[L, B, Q'):
        head(torch.randn(1, 1, 10, C + 1))
    with pytest.raises(ValueError, match='got 7 query states'):
        head.loss(torch.randn(1, 1, 7, C), [_sample([[1., 1., 5., 5.]], [0])])
