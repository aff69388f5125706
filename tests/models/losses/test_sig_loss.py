"""SigLoss (BinsFormer's scale-invariant log loss) against the formula
worked out by hand. The depth head's own use of it (and the comparison with
mmseg's SiLogLoss) is in ``tests/models/heads/test_glid_depth_head.py``."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope

import glid_mm  # noqa: F401
from glid_mm.models.losses import SigLoss
from glid_mm.registry import build_model


def si_log(pred, gt, variance_focus=0.85, weight=1.0, eps=1e-3, mask=None):
    """The formula of the docstring, written out element by element."""
    g = []
    for p, t, m in zip(
            pred.flatten().tolist(),
            gt.flatten().tolist(),
        [True] * gt.numel() if mask is None else mask.flatten().tolist()):
        if t > eps and m:
            g.append(math.log(max(p, eps)) - math.log(t))
    n = len(g)
    mean = sum(g) / n
    var = sum(x * x for x in g) / n - mean * mean
    return weight * math.sqrt(var + (1 - variance_focus) * mean * mean)


def test_two_pixels_by_hand():
    """g = (0, 1): mean 1/2, population variance 1/4, so the loss is
    sqrt(1/4 + 0.15 / 4)."""
    pred = torch.tensor([1.0, math.e]).view(1, 1, 1, 2)
    gt = torch.ones(1, 1, 1, 2)
    value = SigLoss()(pred, gt)
    assert value.item() == pytest.approx(math.sqrt(0.25 + 0.15 * 0.25))
    assert SigLoss(loss_weight=10.0)(pred, gt).item() == pytest.approx(
        10 * math.sqrt(0.2875))


@pytest.mark.parametrize('focus', [0.0, 0.5, 0.85, 1.0])
def test_matches_formula_on_random_depths(focus):
    torch.manual_seed(0)
    gt = torch.rand(2, 1, 5, 6) * 4 + 0.5
    gt[1, 0, 0] = 0.0  # no measurement
    pred = torch.rand(2, 1, 5, 6) * 4 + 0.5
    value = SigLoss(variance_focus=focus, loss_weight=3.0)(pred, gt)
    assert value.item() == pytest.approx(
        si_log(pred, gt, focus, 3.0), rel=1e-5)


def test_batch_is_reduced_over_pixels_not_per_image():
    """The valid pixels of the whole batch form one set (not a mean of
    per-image losses)."""
    pred = torch.tensor([1.0, 1.0, math.e, math.e**3]).view(2, 1, 1, 2)
    gt = torch.ones(2, 1, 1, 2)
    loss = SigLoss()
    whole = loss(pred, gt).item()
    per_image = (loss(pred[:1], gt[:1]) + loss(pred[1:], gt[1:])).item() / 2
    assert whole == pytest.approx(si_log(pred, gt))
    assert whole != pytest.approx(per_image)


def test_scale_invariance_at_variance_focus_one():
    """lambda = 1: a global scale on the prediction does not change the
    loss; lambda < 1 charges (1 - lambda) * log(scale)^2."""
    torch.manual_seed(0)
    gt = torch.rand(1, 1, 4, 4) + 1
    pred = torch.rand(1, 1, 4, 4) + 1
    inv = SigLoss(variance_focus=1.0)
    torch.testing.assert_close(inv(3 * pred, gt), inv(pred, gt))
    # a perfect prediction up to the scale 2: g = log 2 everywhere
    value = SigLoss(variance_focus=0.85)(2 * gt, gt)
    assert value.item() == pytest.approx(
        math.sqrt(0.15) * math.log(2), rel=1e-5)


def test_valid_mask_and_eps_select_pixels():
    pred = torch.tensor([2.0, 1.0, 5.0, 7.0]).view(1, 1, 2, 2)
    gt = torch.tensor([1.0, 1.0, 1e-3, 2.0]).view(1, 1, 2, 2)  # 1e-3: invalid
    mask = torch.tensor([1, 1, 1, 0]).view(1, 1, 2, 2)  # drop the last
    value = SigLoss()(pred, gt, valid_mask=mask)
    # left: g = (log 2, 0)
    assert value.item() == pytest.approx(
        si_log(pred[..., :1, :], gt[..., :1, :]))
    assert value.item() == pytest.approx(
        math.sqrt(math.log(2)**2 / 4 + 0.15 * math.log(2)**2 / 4))
    # a larger eps also drops gt = 1.0: only g = log(7 / 2) is left
    assert SigLoss(eps=1.5)(pred, gt).item() == pytest.approx(
        math.sqrt(0.15) * math.log(3.5))


def test_prediction_clamped_at_eps():
    """A zero (or negative) predicted depth is read as eps, not log(0)."""
    pred = torch.tensor([0.0, -1.0, 1.0]).view(1, 1, 1, 3)
    gt = torch.ones(1, 1, 1, 3)
    value = SigLoss(eps=0.01)(pred, gt)
    assert math.isfinite(value.item())
    assert value.item() == pytest.approx(
        si_log(torch.tensor([0.01, 0.01, 1.0]), gt, eps=0.01), rel=1e-5)


def test_gradients_finite_for_a_perfect_prediction():
    gt = torch.rand(1, 1, 3, 3) + 1
    pred = gt.clone().requires_grad_(True)
    value = SigLoss()(pred, gt)
    assert value.item() == pytest.approx(1e-6)  # sqrt of the 1e-12 clamp
    value.backward()
    assert torch.isfinite(pred.grad).all()


def test_gradient_matches_finite_differences():
    torch.manual_seed(0)
    gt = (torch.rand(1, 1, 3, 3) + 1).double()
    pred = (torch.rand(1, 1, 3, 3) + 1).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: SigLoss()(p, gt), (pred, ))


def test_no_valid_pixel_gives_attached_zero():
    pred = torch.rand(1, 1, 2, 2, requires_grad=True)
    value = SigLoss()(pred, torch.zeros(1, 1, 2, 2))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))
    masked = SigLoss()(
        pred, torch.ones(1, 1, 2, 2), valid_mask=torch.zeros(1, 1, 2, 2))
    assert masked.item() == 0.0


def test_registered_in_mmseg_with_loss_name():
    with DefaultScope.overwrite_default_scope('mmseg'):
        loss = build_model(
            dict(type='SigLoss', loss_weight=10.0, loss_name='loss_sig'))
    assert isinstance(loss, SigLoss)
    assert loss.loss_name == 'loss_sig'
    assert SigLoss().loss_name == 'loss_depth'
    assert loss.loss_weight == 10.0 and loss.variance_focus == 0.85


@pytest.mark.parametrize('kwargs, match', [
    (dict(variance_focus=-0.1), r'variance_focus must be in \[0, 1\]'),
    (dict(variance_focus=1.01), r'variance_focus must be in \[0, 1\]'),
    (dict(eps=0.0), 'eps must be positive'),
    (dict(eps=-1e-3), 'eps must be positive'),
    (dict(loss_name='sig'), 'loss_name must start with "loss_"'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SigLoss(**kwargs)


def test_shape_mismatch():
    with pytest.raises(ValueError, match='must have one shape'):
        SigLoss()(torch.ones(1, 1, 2, 2), torch.ones(1, 2, 2))
