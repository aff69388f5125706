"""GLIDPretrainHead (eq. 2) and patchify / unpatchify, on hand-made
tensors."""
import pytest
import torch
from mmengine.registry import DefaultScope

import glid_mm  # noqa: F401
from glid_mm.models.heads.glid_pretrain_head import (GLIDPretrainHead,
                                                     patchify, unpatchify)
from glid_mm.registry import build_model


def _head(**kwargs):
    cfg = dict(type='GLIDPretrainHead', in_channels=6, patch_size=2)
    cfg.update(kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return build_model(cfg)


def test_patchify_order_by_hand():
    """MAE's order: row-major patches, each flattened as (p_y, p_x, C)."""
    img = torch.arange(2 * 4 * 6, dtype=torch.float32).view(1, 2, 4, 6)
    patches = patchify(img, 2)
    assert patches.shape == (1, 2 * 3, 2 * 2 * 2)
    # patch 1: rows 0-1, columns 2-3
    expected = []
    for y in (0, 1):
        for x in (2, 3):
            for c in (0, 1):
                expected.append(float(img[0, c, y, x]))
    assert patches[0, 1].tolist() == expected
    # patch 5 (second row of patches, last column): rows 2-3, columns 4-5
    assert patches[0, 5, :2].tolist() == [img[0, 0, 2, 4], img[0, 1, 2, 4]]
    assert patches[0, 5, -2:].tolist() == [img[0, 0, 3, 5], img[0, 1, 3, 5]]


def test_unpatchify_inverts_patchify():
    torch.manual_seed(0)
    img = torch.randn(2, 3, 8, 12)
    x = patchify(img, 4)
    assert x.shape == (2, 6, 48)
    assert torch.equal(unpatchify(x, 4, (2, 3), channels=3), img)


def test_patchify_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match='not divisible by the mask patch'):
        patchify(torch.zeros(1, 3, 6, 8), 4)


def test_builds_with_default_loss_and_initialises():
    head = _head()
    assert isinstance(head, GLIDPretrainHead)
    assert head.predictor.in_features == 6
    assert head.predictor.out_features == 2 * 2 * 3
    assert type(head.loss_module).__name__ == 'PixelReconstructionLoss'
    head.init_weights()
    assert head.predictor.bias.abs().sum() == 0
    assert head.predictor.weight.abs().sum() > 0
    bound = (6 / (6 + 12))**0.5  # xavier_uniform
    assert head.predictor.weight.abs().max() <= bound
    # an explicit init_cfg is not overwritten by the xavier default
    head = _head(init_cfg=dict(type='Constant', layer='Linear', val=0.5))
    head.init_weights()
    assert (head.predictor.weight == 0.5).all()


def test_forward_is_the_linear_layer():
    torch.manual_seed(0)
    head = _head()
    states = torch.randn(2, 5, 6)
    pred = head(states)
    assert pred.shape == (2, 5, 12)
    torch.testing.assert_close(
        pred, states @ head.predictor.weight.T + head.predictor.bias)


def test_target_is_the_masked_patches():
    torch.manual_seed(0)
    head = _head()
    imgs = torch.randn(2, 3, 4, 6)  # 2 x 3 patches of 2 px
    mask_idx = torch.tensor([[0, 4], [5, 1]])
    target = head.construct_target(imgs, mask_idx)
    assert target.shape == (2, 2, 12)
    all_patches = patchify(imgs, 2)
    for b in range(2):
        for j in range(2):
            assert torch.equal(target[b, j], all_patches[b, mask_idx[b, j]])
    # patch 4 of image 0: rows 2-3, columns 2-3, as (p_y, p_x, C)
    by_hand = imgs[0, :, 2:4, 2:4].permute(1, 2, 0).reshape(-1)
    assert torch.equal(target[0, 1], by_hand)


def test_norm_pix_target():
    torch.manual_seed(0)
    head = _head(norm_pix=True)
    imgs = torch.randn(1, 3, 4, 4) * 3 + 2
    target = head.construct_target(imgs, torch.tensor([[0, 3]]))
    raw = patchify(imgs, 2)[0, [0, 3]]
    expected = (raw - raw.mean(-1, keepdim=True)) / (
        raw.var(-1, keepdim=True) + 1e-6)**.5
    torch.testing.assert_close(target[0], expected)
    torch.testing.assert_close(
        target.mean(-1), torch.zeros(1, 2), atol=1e-5, rtol=0)


def test_loss_is_mse_over_masked_patches_only():
    torch.manual_seed(0)
    head = _head()
    imgs = torch.randn(1, 3, 4, 6)
    mask_idx = torch.tensor([[1, 2]])
    pred = torch.randn(1, 2, 12, requires_grad=True)
    loss = head.loss(pred, imgs, mask_idx)
    target = patchify(imgs, 2)[0, [1, 2]]
    torch.testing.assert_close(loss, ((pred[0] - target)**2).mean())
    # visible patches do not enter the loss
    changed = imgs.clone()
    changed[..., 0:2, 0:2] += 10.0  # patch 0 (visible)
    torch.testing.assert_close(head.loss(pred, changed, mask_idx), loss)
    loss.backward()
    torch.testing.assert_close(pred.grad[0], 2 * (pred[0] - target) / 24)


def test_loss_reaches_the_predictor():
    torch.manual_seed(0)
    head = _head()
    head.init_weights()
    states = torch.randn(2, 3, 6)
    imgs = torch.randn(2, 3, 4, 6)
    mask_idx = torch.tensor([[0, 2, 4], [1, 3, 5]])
    head.loss(head(states), imgs, mask_idx).backward()
    for p in head.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize(
    'kwargs', [dict(in_channels=0),
               dict(patch_size=0),
               dict(img_channels=-1)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='must be positive'):
        _head(**kwargs)


def test_prediction_and_target_shapes_must_match():
    head = _head()
    with pytest.raises(
            ValueError,
            match=r'prediction \(1, 2, 11\) and '
            r'target \(1, 2, 12\) differ'):
        head.loss(
            torch.zeros(1, 2, 11), torch.zeros(1, 3, 4, 4),
            torch.tensor([[0, 1]]))
