"""GLIDMaskSegHead: the same mask head as an mmseg decode head."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.models.decode_heads import Mask2FormerHead as MMSegMask2FormerHead
from mmseg.structures import SegDataSample

import glid_mm  # noqa: F401
from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.heads import (GLIDMaskHead, GLIDMaskPredictor,
                                  GLIDMaskSegHead)
from glid_mm.models.heads.glid_mask_head import MASK2FORMER_TRAIN_CFG

L, B, Q, C, CM, S, K = 3, 2, 6, 16, 8, 8, 4


def _head(**kwargs):
    init_default_scope('mmseg')
    cfg = dict(
        num_classes=K,
        num_queries=Q,
        in_channels=C,
        mask_channels=CM,
        train_cfg=dict(MASK2FORMER_TRAIN_CFG, num_points=64))
    cfg.update(kwargs)
    return GLIDMaskSegHead(**cfg)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = tuple(
        torch.randn(B, CM, S // 2**i, S // 2**i, generator=g)
        for i in range(3))
    return GLIDDecoded(feats, torch.randn(L, B, Q, C, generator=g))


def _metainfo():
    H = W = 4 * S
    return dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W))


def test_shares_the_mmdet_head_code():
    # one forward (so one predictor) for mmdet and mmseg
    assert GLIDMaskSegHead.forward is GLIDMaskHead.forward
    assert GLIDMaskSegHead.__init__ is not MMSegMask2FormerHead.__init__
    head = _head()
    assert type(head.predictor) is GLIDMaskPredictor
    # mmseg's Mask2Former glue: gt_sem_seg -> masks, semantic inference
    assert GLIDMaskSegHead.loss is MMSegMask2FormerHead.loss
    assert GLIDMaskSegHead.predict is MMSegMask2FormerHead.predict
    # no unused second class layer from mmseg's __init__
    assert not hasattr(head, 'cls_embed')
    assert (head.num_classes, head.out_channels) == (K, K)
    assert head.num_queries == Q


def test_semantic_inference_is_mask2formers():
    head = _head()
    x = _inputs()
    seg = head.predict(x, [_metainfo()] * B, test_cfg=None)
    assert seg.shape == (B, K, 4 * S, 4 * S)
    cls, masks = head.predictor(x.query_states[-1], x.feats[0])
    masks = F.interpolate(
        masks, size=(4 * S, 4 * S), mode='bilinear', align_corners=False)
    expected = torch.einsum('bqc,bqhw->bchw',
                            F.softmax(cls, -1)[..., :-1], masks.sigmoid())
    assert torch.allclose(seg, expected, atol=1e-6)


def test_loss_from_semantic_map_with_ignored_pixels():
    torch.manual_seed(0)
    head = _head()
    samples = []
    for b in range(B):
        sem = torch.full((1, 4 * S, 4 * S), 255, dtype=torch.long)
        sem[:, :10] = b
        sem[:, 20:] = 3
        s = SegDataSample(metainfo=_metainfo())
        s.gt_sem_seg = PixelData(data=sem)
        samples.append(s)
    losses = head.loss(_inputs(), samples, train_cfg=None)
    assert len(losses) == 3 * L  # cls / mask / dice for every block
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())


@pytest.mark.parametrize('num_classes', [1, 0, 2.0])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match='num_classes'):
        _head(num_classes=num_classes)
