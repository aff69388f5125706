"""A Bi-FPN node that keeps almost nothing for backward.

A Bi-FPN node (EfficientDet / GLID Sec. 3.1) is ``BN(pw(dw(act(fuse(
inputs)))))``: resize one input, fast-normalised fusion, activation,
depthwise 3x3 conv, 1x1 conv, BatchNorm. Plain autograd keeps six maps of the
node's size for backward (the resized input, the fused sum, the activation,
the depthwise and 1x1 outputs and the BN output); with 11 blocks at the 1/4
scale these dominate the activation memory of GLID pre-training. This
function keeps only the node's inputs (alive anyway: they are other nodes'
outputs) and its output, and in backward

1. recovers BN's normalised input from its output, ``x_hat = (y - beta) /
   gamma`` (the trick of InPlace-ABN, Rota Bulo et al., CVPR 2018), and runs
   BN's backward from it;
2. runs the 1x1 conv's backward with the same aten kernel autograd uses,
   on the depthwise output recomputed from the inputs (the cheap part:
   resize, fusion, activation and the depthwise conv are recomputed, the
   1x1 conv is not);
3. back-propagates through the recomputed cheap part with autograd.

Conditions (else :func:`separable_node` recomputes only the cheap part,
through ``torch.utils.checkpoint``, and keeps the 1x1 and BN maps): the
module is in training mode, the norm is a plain affine ``nn.BatchNorm2d``
tracking running statistics (SyncBN and others fall back), the 1x1 conv has
no bias and no activation follows. BN's running statistics are updated once,
in the forward pass. A BN weight with ``|gamma| < 1e-5`` is clamped to
1e-5 (keeping its sign) when recovering ``x_hat``, as InPlace-ABN does.

Mixed precision: the fused path also needs the node to compute in fp32 /
fp64, i.e. no autocast on the inputs' device (mmengine's
``AmpOptimWrapper``) and fp32 / fp64 inputs and parameters; otherwise it
falls back to ``torch.utils.checkpoint`` as above, which recomputes the
cheap part under the forward's autocast state and runs the 1x1 conv and BN
through plain autograd. The reason is ``x_hat``: BN's output ``y`` is
then fp16 / bf16, and ``(y - beta) / gamma`` from it errs by about
``eps_dtype * |beta| / |gamma|`` (bf16 near ``beta = 1`` has steps of
2^-7, so with ``gamma = 1e-3`` ``x_hat``, whose spread is 1, comes in
steps of 7.8), where plain autograd keeps BN's input itself. Measured on
one node (tests/models/layers/test_glid_bifpn_node_amp.py: 2x8x8x8 and
2x8x4x4 inputs, CPU autocast), the fused path against plain autograd under
the same autocast, max abs difference / max abs of the plain gradient:

- bf16, backward inside the autocast region, random ``gamma``: 2.1e-2 for
  BN's weight (plain bf16 itself differs from fp32 by 8.4e-3 there),
  1.4e-3 to 3.8e-3 for the others but BN's bias (exact, as the output);
- the same with ``gamma = 1e-3``, ``beta = 1``: 1.7 for BN's weight, 0.35
  for the 1x1 weight, 0.14 for the depthwise weight, 0.17 for the fusion
  weights, 0.13 / 0.16 for the inputs;
- backward after leaving the autocast region (as ``AmpOptimWrapper`` runs
  it), fp16 either way and half-precision models: the fused backward
  failed on mixed dtypes (half maps against fp32 parameters or ``invstd``).

With the fallback the measured difference is 0 in every case (the same
kernels on the same dtypes). Keeping ``y`` in fp32 instead would keep as
much memory as the fallback's two half-precision maps (the inputs of the
1x1 conv and of BN), match plain autograd only up to rounding, and need
autocast's casts of the 1x1 weight repeated by hand in backward. The
fused path's backward recomputes the cheap part with autocast off, as its
forward ran, so a backward called inside an autocast region still sees
fp32 maps (it failed in the 1x1 conv's backward before).
"""
from typing import Callable, List

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

GAMMA_EPS = 1e-5


class _NodeFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, pre: Callable, pre_params: List[Tensor], pw: nn.Module,
                num_inputs: int, *tensors: Tensor) -> Tensor:
        inputs = tensors[:num_inputs]
        conv, bn = pw.conv, pw.norm
        with torch.no_grad():
            d = pre(*inputs)
            z = F.conv2d(d, conv.weight, None, conv.stride, conv.padding,
                         conv.dilation, conv.groups)
            del d
            # BN's own kernel (as nn.BatchNorm2d runs it in training, the
            # running statistics updated once, here), which also returns
            # the batch's inverse std for backward
            bn.num_batches_tracked.add_(1)
            momentum = (1.0 / float(bn.num_batches_tracked)
                        if bn.momentum is None else bn.momentum)
            y, _, invstd = torch.ops.aten.native_batch_norm(
                z, bn.weight, bn.bias, bn.running_mean, bn.running_var, True,
                momentum, bn.eps)
            del z
        ctx.pre, ctx.pre_params, ctx.pw = pre, pre_params, pw
        ctx.num_inputs = num_inputs
        ctx.invstd = invstd
        ctx.save_for_backward(y, *inputs)
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        y, *inputs = ctx.saved_tensors
        conv, bn = ctx.pw.conv, ctx.pw.norm
        gamma, beta = bn.weight.detach(), bn.bias.detach()
        safe = torch.where(gamma >= 0, 1.0,
                           -1.0) * gamma.abs().clamp(min=GAMMA_EPS)
        # BN's backward kernel run on the output: with y as its input,
        # "mean" beta and "inverse std" 1 / gamma it forms x_hat = (y -
        # beta) / gamma, and the weight gamma^2 * invstd makes its input
        # gradient factor (weight * 1 / gamma) the true gamma * invstd
        gz, g_gamma, g_beta = torch.ops.aten.native_batch_norm_backward(
            gy, y, gamma * safe * ctx.invstd, None, None, beta, 1.0 / safe,
            True, bn.eps, [True, True, True])
        # forward ran without autocast (else separable_node falls back):
        # recompute d as it was, fp32, even if backward is called inside an
        # autocast region (which would make d half and the conv backward
        # below fail on mixed dtypes)
        with torch.enable_grad(), torch.autocast(y.device.type, enabled=False):
            leaves = [
                x.detach().requires_grad_(x.requires_grad) for x in inputs
            ]
            d = ctx.pre(*leaves)
        gd, g_w, _ = torch.ops.aten.convolution_backward(
            gz, d.detach(), conv.weight, None, conv.stride, conv.padding,
            conv.dilation, False, [0, 0], conv.groups, [True, True, False])
        wrt = [x for x in leaves if x.requires_grad
               ] + [p for p in ctx.pre_params if p.requires_grad]
        grads = iter(torch.autograd.grad(d, wrt, gd, allow_unused=True))
        g_inputs = [next(grads) if x.requires_grad else None for x in leaves]
        g_pre = [
            next(grads) if p.requires_grad else None for p in ctx.pre_params
        ]
        # pw conv weight, BN weight and bias: returned through the tensors
        # that forward received for them
        return (None, None, None, None, *g_inputs, *g_pre, g_w, g_gamma,
                g_beta)


def _fusable(pw: nn.Module) -> bool:
    bn = getattr(pw, 'norm', None)
    return (pw.training and type(bn) is nn.BatchNorm2d and bn.affine
            and bn.track_running_stats and pw.conv.bias is None
            and not getattr(pw, 'with_activation', False))


def _full_precision(tensors: List[Tensor]) -> bool:
    """Whether the node computes in fp32 / fp64: no autocast on the
    device of ``tensors`` (the node's inputs and parameters) and all of
    them fp32 / fp64.

    Else BN's output ``y`` is fp16 / bf16 and recovering ``x_hat = (y -
    beta) / gamma`` from it loses about ``eps_dtype * |beta| / |gamma|``
    (module docstring).
    """
    if torch.is_autocast_enabled(tensors[0].device.type):
        return False
    return all(t.dtype in (torch.float32, torch.float64) for t in tensors)


def separable_node(pre: Callable[..., Tensor], pre_params: List[Tensor],
                   pw: nn.Module, inputs: List[Tensor]) -> Tensor:
    """``pw(pre(*inputs))`` keeping only ``inputs`` and the output.

    The fused path needs a fusable ``pw`` (:func:`_fusable`) and fp32 /
    fp64 computation without autocast (:func:`_full_precision`); else the
    cheap part is recomputed through ``torch.utils.checkpoint``.

    Args:
        pre: The node's cheap part (resize, fusion, activation, depthwise
            conv) as a function of ``inputs``; it is run twice (forward,
            and again in backward).
        pre_params: The parameters ``pre`` uses (fusion weights, depthwise
            conv weight and bias).
        pw: mmcv ``ConvModule`` with a bias-free 1x1 conv and a BN norm.
        inputs: ``[B, C, H_i, W_i]`` maps.

    Returns:
        Tensor: the node's output, ``[B, C_out, H, W]``.
    """
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad
        for t in list(inputs) + list(pw.parameters()) + list(pre_params))
    if not needs_grad:
        return pw(pre(*inputs))
    if not _fusable(pw) or not _full_precision(
            list(inputs) + list(pre_params) + list(pw.parameters())):
        # e.g. SyncBN, or autocast: recompute the cheap part only
        return pw(checkpoint(pre, *inputs, use_reentrant=False))
    return _NodeFunction.apply(pre, list(pre_params), pw, len(inputs), *inputs,
                               *pre_params, pw.conv.weight, pw.norm.weight,
                               pw.norm.bias)
