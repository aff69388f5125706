import math

import pytest
import torch

from glid_mm.models.losses.m3i_losses import (contrastive_loss,
                                              dense_feature_loss)


def test_dense_loss_value():
    pred = torch.zeros(2, 3, 4)
    target = torch.ones(2, 3, 4)
    # ||0 - 1||^2 summed over 4 channels, divided by 4
    assert dense_feature_loss(pred, target).item() == pytest.approx(1.0)
    assert dense_feature_loss(target, target).item() == 0.0


def test_dense_loss_negative_term():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    plain = dense_feature_loss(pred, target)
    with_neg = dense_feature_loss(pred, target, neg_weight=0.5)
    flat_p, flat_t = pred.reshape(-1, 8), target.reshape(-1, 8)
    corr = flat_t.T @ flat_t / 10
    neg = torch.diagonal(flat_p @ corr @ flat_p.T).mean()
    assert with_neg.item() == pytest.approx(
        (plain * 8 + 0.5 * neg).item() / 8, rel=1e-5)


def test_dense_loss_no_gradient_to_target():
    pred = torch.randn(1, 2, 4, requires_grad=True)
    target = torch.randn(1, 2, 4, requires_grad=True)
    dense_feature_loss(pred, target, 0.1).backward()
    assert pred.grad is not None and target.grad is None


def test_contrastive_loss():
    emb = torch.eye(4)
    scale = torch.tensor(math.log(100.))
    aligned = contrastive_loss(emb, emb, scale)
    shuffled = contrastive_loss(emb, emb.roll(1, 0), scale)
    assert aligned.item() < 1e-3 < shuffled.item()


def test_shape_mismatch():
    with pytest.raises(ValueError, match='differ'):
        dense_feature_loss(torch.zeros(1, 2, 3), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match='differ'):
        contrastive_loss(
            torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor(0.))
