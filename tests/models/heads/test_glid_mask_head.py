"""GLIDMaskHead: mmdet mask classification on GLID query states."""
import numpy as np
import pytest
import torch
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData

import glid_mm  # noqa: F401
from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.heads import GLIDMaskHead, GLIDMaskPredictor
from glid_mm.models.heads.glid_mask_head import MASK2FORMER_TRAIN_CFG

L, B, Q, C, CM, S = 3, 2, 6, 16, 8, 16  # layers, batch, queries, widths, 1/4


def _train_cfg():
    return dict(MASK2FORMER_TRAIN_CFG, num_points=64)


def _head(**kwargs):
    init_default_scope('mmdet')
    cfg = dict(
        num_things_classes=3,
        num_stuff_classes=2,
        num_queries=Q,
        in_channels=C,
        mask_channels=CM,
        train_cfg=_train_cfg())
    cfg.update(kwargs)
    return GLIDMaskHead(**cfg)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = tuple(
        torch.randn(B, CM, S // 2**i, S // 2**i, generator=g)
        for i in range(4))
    return GLIDDecoded(feats, torch.randn(L, B, Q, C, generator=g))


def _sample(num_things=2, with_stuff=True):
    """One image of 4S x 4S (the 1/4 map is S x S)."""
    H = W = 4 * S
    s = DetDataSample(
        metainfo=dict(
            img_shape=(H, W),
            batch_input_shape=(H, W),
            pad_shape=(H, W),
            ori_shape=(H, W),
            scale_factor=(1., 1.)))
    masks = np.zeros((num_things, H, W), dtype=np.uint8)
    for i in range(num_things):
        masks[i, 8 * i:8 * i + 20, 10:40] = 1
    s.gt_instances = InstanceData(
        labels=torch.arange(num_things) % 3,
        masks=BitmapMasks(masks, H, W),
        bboxes=torch.zeros(num_things, 4))
    if with_stuff:
        sem = torch.full((1, H, W), 255, dtype=torch.long)
        sem[:, 40:, :] = 3
        sem[:, :, 50:] = 4
        s.gt_sem_seg = PixelData(sem_seg=sem)
    return s


def test_forward_is_the_predictor_on_every_block():
    head = _head()
    x = _inputs()
    cls_list, mask_list = head(x)
    assert len(cls_list) == len(mask_list) == L
    for layer in range(L):
        assert cls_list[layer].shape == (B, Q, 6)  # 5 classes + no object
        assert mask_list[layer].shape == (B, Q, S, S)
        cls, masks = head.predictor(x.query_states[layer], x.feats[0])
        assert torch.equal(cls_list[layer], cls)
        assert torch.equal(mask_list[layer], masks)


def test_reuses_mask2former_matching_and_losses():
    assert GLIDMaskHead._get_targets_single is \
        Mask2FormerHead._get_targets_single
    assert isinstance(_head().predictor, GLIDMaskPredictor)


@pytest.mark.parametrize('num_things', [2, 0])
def test_single_block_loss_equals_mmdet(num_things):
    """The written-out ``_loss_by_feat_single`` (split into named steps so
    that a caller can hand over the mask count) computes what mmdet's
    Mask2Former method computes, values and gradients, on one input."""
    head = _head()
    x = _inputs()
    samples = [_sample(num_things), _sample(num_things=1)]
    gts = head.preprocess_gt([s.gt_instances for s in samples],
                             [s.gt_sem_seg for s in samples])
    metas = [s.metainfo for s in samples]
    results = []
    for fn in (GLIDMaskHead._loss_by_feat_single,
               Mask2FormerHead._loss_by_feat_single):
        head.zero_grad()
        cls, masks = head(x)
        torch.manual_seed(3)  # the same uncertain points
        losses = fn(head, cls[-1], masks[-1], gts, metas)
        sum(losses).backward()
        results.append(([v.detach() for v in losses],
                        head.predictor.fc.weight.grad.clone()))
    (ours, our_grad), (theirs, their_grad) = results
    assert len(ours) == 3
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(our_grad, their_grad)


def test_given_mask_count_replaces_the_reduced_count():
    """Mask and dice losses scale as 1 / count; the class loss does not;
    outside the context the head normalises as mmdet again."""
    head = _head()
    x = _inputs()
    samples = [_sample(), _sample(num_things=1)]

    def losses(count=None):
        torch.manual_seed(3)
        if count is None:
            return head.loss(x, samples)
        with head.given_mask_count(count):
            return head.loss(x, samples)

    plain = losses()
    # 2 images with 2 + 1 things + 2 stuff each = 7 masks: the local count
    doubled = losses(2 * 7 / 1)
    torch.testing.assert_close(doubled['loss_cls'], plain['loss_cls'])
    torch.testing.assert_close(doubled['loss_mask'], plain['loss_mask'] / 2)
    torch.testing.assert_close(doubled['loss_dice'], plain['loss_dice'] / 2)
    assert head._given_mask_count is None
    torch.testing.assert_close(losses()['loss_mask'], plain['loss_mask'])
    with pytest.raises(ValueError, match='positive'):
        with head.given_mask_count(0.):
            pass


def test_loss_supervises_every_block():
    torch.manual_seed(0)
    head = _head()
    losses = head.loss(_inputs(), [_sample(), _sample(num_things=1)])
    names = {'loss_cls', 'loss_mask', 'loss_dice'}
    expected = names | {f'd{i}.{n}' for i in range(L - 1) for n in names}
    assert set(losses) == expected
    for name, value in losses.items():
        assert torch.isfinite(value), name
        assert value > 0, name
    # class weights: 1 for the 5 classes, 0.1 for "no object"
    assert head.class_weight == [1.0] * 5 + [0.1]


def test_image_without_annotation():
    torch.manual_seed(0)
    head = _head(num_stuff_classes=0)
    empty = _sample(num_things=0, with_stuff=False)
    losses = head.loss(_inputs(), [empty, empty])
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    # no matched query: mask and dice losses are 0 (but in the graph)
    assert losses['loss_mask'] == 0 and losses['loss_dice'] == 0
    sum(losses.values()).backward()
    assert head.predictor.fc.weight.grad is not None


def test_predict_gives_last_block_at_input_size():
    head = _head()
    x = _inputs()
    cls, masks = head.predict(x, [_sample(), _sample()])
    assert cls.shape == (B, Q, 6)
    assert masks.shape == (B, Q, 4 * S, 4 * S)
    assert torch.equal(cls, head(x)[0][-1])


def test_loss_types_resolve_in_mmdet_under_mmseg_scope():
    from mmdet.models.losses import CrossEntropyLoss
    init_default_scope('mmseg')
    head = GLIDMaskHead(
        num_things_classes=3,
        num_stuff_classes=0,
        num_queries=Q,
        in_channels=C,
        mask_channels=CM,
        train_cfg=_train_cfg())
    assert type(head.loss_cls) is CrossEntropyLoss
    assert type(head.loss_mask) is CrossEntropyLoss


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(num_queries=0), ValueError, 'num_queries'),
    (dict(num_things_classes=-1), ValueError, 'num_things_classes'),
    (dict(num_things_classes=0,
          num_stuff_classes=0), ValueError, 'must be positive'),
    (dict(mask_feat_level=-1), ValueError, 'mask_feat_level'),
    (dict(loss_cls=dict(type='CrossEntropyLoss', class_weight=[1.0] * 3)),
     ValueError, 'class_weight'),
    (dict(loss_dice='DiceLoss'), TypeError, 'loss_dice'),
    (dict(train_cfg=dict(assigner=dict(type='HungarianAssigner'))), KeyError,
     'sampler'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        _head(**kwargs)


def test_bad_inputs():
    head = _head(mask_feat_level=4)
    x = _inputs()
    with pytest.raises(ValueError, match='mask_feat_level=4'):
        head(x)
    with pytest.raises(TypeError, match='GLIDDecoded'):
        _head()(x.feats)
    with pytest.raises(ValueError, match='queries'):
        _head()(GLIDDecoded(x.feats, x.query_states[:, :, :4]))
    with pytest.raises(RuntimeError, match='train_cfg'):
        _head(train_cfg=None).loss(x, [_sample(), _sample()])
