"""separable_node under mixed precision (issue 24, item 13).

The fused path recovers BN's normalised input from its output, ``x_hat =
(y - beta) / gamma``. Under autocast (mmengine's ``AmpOptimWrapper``) ``y``
is fp16 / bf16, and that recovery errs by about ``eps_dtype * |beta| /
|gamma|``: with ``gamma = 1e-3`` and ``beta = 1`` bf16 leaves ``x_hat`` in
steps of 7.8. So the node falls back to plain checkpointing there
(module docstring of ``glid_mm.models.layers.glid_bifpn_node``). Here one
Bi-FPN node (``BiFPNBlock._node``: nearest upsampling, fast normalised
fusion, SiLU, depthwise 3x3, 1x1, BN) with ``with_cp=True`` against the
same node with ``with_cp=False`` (plain autograd), both under the same CPU
autocast: outputs, BN statistics and the gradients of the inputs, the
fusion weights, the depthwise and 1x1 conv weights and BN's weight and
bias; then a whole block, a half-precision model without autocast, and an
fp32 forward whose backward runs inside an autocast region.

Tolerance: the reference is plain autograd under the same autocast, not
fp32 (bf16 autograd itself differs from fp32 by up to 1.4e-2 of a
gradient's largest entry here, more than the fused path's error on most
gradients with ordinary ``gamma``). A legitimate difference between two
ways of computing the same thing in ``dtype`` is about one rounding of a
``dtype`` intermediate, so every tensor may differ from the reference by
``finfo(dtype).eps / 2`` (bf16: 3.9e-3, fp16: 4.9e-4) times the
reference's largest entry. The fallback measured 0 (the same kernels on
the same dtypes). The fused path before it failed outright on mixed dtypes
(backward after the autocast region, fp16, half models), or, with a bf16
backward inside the region, erred by 2.1e-2 (BN weight; 1.4e-3 to 3.8e-3
elsewhere) with random ``gamma`` and by 0.13 to 1.7 with ``gamma = 1e-3``.
"""
import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

from glid_mm.models.necks.bifpn import BiFPNBlock

C = 8


def _cpu_autocast_supports(dtype):
    """Whether CPU autocast runs a conv in ``dtype`` (older torch warns
    and disables itself for anything but bf16)."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        try:
            with torch.autocast('cpu', dtype=dtype):
                out = F.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1))
        except (RuntimeError, UserWarning):
            return False
    return out.dtype == dtype


DTYPES = [
    torch.bfloat16,
    pytest.param(
        torch.float16,
        marks=pytest.mark.skipif(
            not _cpu_autocast_supports(torch.float16),
            reason='this torch has no fp16 CPU autocast')),
]


def _pair(gamma, num_levels=2, seed=0):
    """A plain block (``with_cp=False``) and an identical ``with_cp`` one,
    in training mode, with random fusion weights and BN statistics; BN's
    weight and bias random (``gamma='random'``) or 1e-3 and 1
    (``'small'``: x_hat barely visible in y)."""
    torch.manual_seed(seed)
    block = BiFPNBlock(C, num_levels, dict(type='BN'), dict(type='SiLU'),
                       1e-4).train()
    with torch.no_grad():
        for fuse in [*block.td_fuse, *block.bu_fuse]:
            fuse.weight.uniform_(0.5, 2.0)
        for conv in [*block.td_conv, *block.bu_conv]:
            bn = conv.pointwise_conv.norm
            if gamma == 'small':
                bn.weight.fill_(1e-3)
                bn.bias.fill_(1.0)
            else:
                bn.weight.normal_()
                bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
    cp = copy.deepcopy(block)
    cp.with_cp = True
    return block, cp


def _node(block, inputs):
    """The first top-down node: fuses ``inputs[0]`` with ``inputs[1]``
    upsampled."""
    return block._node(block.td_fuse[0], block.td_conv[0], False, inputs)


def _inputs(dtype, num_levels=2, seed=1):
    """Maps of 8x8, 4x4, ... in ``dtype`` (under autocast every node input
    is half: the BiFPN's lateral conv + BN outputs and other nodes')."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(2, C, 8 >> i, 8 >> i,
                    generator=g).to(dtype).requires_grad_()
        for i in range(num_levels)
    ]


def _run(block, fn, inputs, autocast=None, backward_autocast=None):
    """``fn(block, inputs)`` and ``sum(out * w)``'s gradients, the forward
    in ``torch.autocast('cpu', dtype=autocast)``, the backward after
    leaving it (as ``AmpOptimWrapper`` runs it) or, given
    ``backward_autocast``, inside one (``None``: no autocast)."""
    with torch.autocast('cpu', dtype=autocast, enabled=bool(autocast)):
        out = fn(block, inputs)
        outs = out if isinstance(out, list) else [out]
        g = torch.Generator().manual_seed(2)
        loss = sum((o.float() * torch.randn(o.shape, generator=g)).sum()
                   for o in outs)
    with torch.autocast(
            'cpu', dtype=backward_autocast, enabled=bool(backward_autocast)):
        loss.backward()
    grads = {n: p.grad for n, p in block.named_parameters()}
    grads.update({f'input{i}': x.grad for i, x in enumerate(inputs)})
    bufs = {n: b.clone() for n, b in block.named_buffers()}
    return [o.detach() for o in outs], grads, bufs


def _assert_like(new, ref, tol):
    """Every tensor of ``new`` within ``tol`` times the largest entry of its
    counterpart in ``ref`` (outputs, gradients, buffers), same dtypes."""
    (n_outs, n_grads, n_bufs), (r_outs, r_grads, r_bufs) = new, ref
    pairs = [(f'out{i}', a, b, b)
             for i, (a, b) in enumerate(zip(n_outs, r_outs))]
    assert n_grads.keys() == r_grads.keys()
    for name, r in r_grads.items():
        if r is None:
            assert n_grads[name] is None, name
            continue
        scale = r
        if name.endswith('depthwise_conv.conv.bias'):
            # exactly 0 (BN's input gradient sums to zero per channel, so
            # the 1x1 conv's input gradient does): what shows is rounding
            # noise, at the scale of the depthwise weight's gradient
            scale = r_grads[name[:-len('bias')] + 'weight']
        pairs.append((name, n_grads[name], r, scale))
    pairs += [(n, n_bufs[n], b, b) for n, b in r_bufs.items()
              if b.is_floating_point()]
    for name, a, b, scale in pairs:
        assert a.dtype == b.dtype, (name, a.dtype, b.dtype)
        err = (a.double() - b.double()).abs().max().item()
        bound = tol * scale.double().abs().max().item()
        assert err <= bound, f'{name}: max |diff| {err:.3e} > {bound:.3e}'
    for name, b in r_bufs.items():  # num_batches_tracked: updated once
        if not b.is_floating_point():
            assert torch.equal(n_bufs[name], b), name


@pytest.mark.parametrize(
    'backward_inside', [False, True],
    ids=['backward_after', 'backward_inside'])
@pytest.mark.parametrize('gamma', ['random', 'small'])
@pytest.mark.parametrize('dtype', DTYPES)
def test_node_under_autocast_equals_plain_autograd(dtype, gamma,
                                                   backward_inside):
    plain, cp = _pair(gamma)
    bwd = dtype if backward_inside else None
    ref = _run(plain, _node, _inputs(dtype), dtype, bwd)
    new = _run(cp, _node, _inputs(dtype), dtype, bwd)
    assert ref[0][0].dtype == dtype  # BN's output is half under autocast
    _assert_like(new, ref, torch.finfo(dtype).eps / 2)


def test_autocast_takes_the_checkpoint_path_fp32_the_fused_one():
    """Under autocast BN's own backward runs on its saved input; without
    it the fused function (fp32 behaviour unchanged)."""
    _, cp = _pair('random')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = _node(cp, _inputs(torch.bfloat16))
    assert type(out.grad_fn).__name__ != '_NodeFunctionBackward'
    out = _node(cp, _inputs(torch.float32))
    assert type(out.grad_fn).__name__ == '_NodeFunctionBackward'


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_precision_model_equals_plain_autograd(dtype):
    """A model cast to ``dtype`` without autocast: BN's output is half as
    well, so the same fallback and tolerance."""
    plain, cp = _pair('small')
    plain.to(dtype)
    cp.to(dtype)
    ref = _run(plain, _node, _inputs(dtype))
    new = _run(cp, _node, _inputs(dtype))
    _assert_like(new, ref, torch.finfo(dtype).eps / 2)


def test_fp32_forward_with_backward_inside_autocast():
    """The fused path (fp32 forward) recomputes its cheap part in backward
    with autocast off, as it ran in forward; a backward called inside an
    autocast region made that recomputation bf16 and the 1x1 conv's
    backward fail. fp32 tolerance: the fused path's exact arithmetic
    differs from autograd's by reassociation and by recovering x_hat in
    fp32 (measured up to 6.8e-7 of the largest entry, BN's weight)."""
    ref = _run(_pair('random')[0], _node, _inputs(torch.float32))
    plain, cp = _pair('random')
    bf16 = torch.bfloat16
    new = _run(cp, _node, _inputs(torch.float32), backward_autocast=bf16)
    assert new[0][0].dtype == torch.float32
    _assert_like(new, ref, 1e-5)
    ref_in_autocast = _run(
        plain, _node, _inputs(torch.float32), backward_autocast=bf16)
    _assert_like(ref_in_autocast, ref, 1e-5)  # plain autograd: the same


@pytest.mark.parametrize('gamma', ['random', 'small'])
def test_block_with_cp_under_bf16_autocast_equals_plain(gamma):
    """A 3-level block (top-down and bottom-up nodes, max-pool resize),
    every node's output bf16 and fed to the next."""
    plain, cp = _pair(gamma, num_levels=3)
    ref = _run(plain, lambda b, x: b(x), _inputs(torch.bfloat16, 3),
               torch.bfloat16)
    new = _run(cp, lambda b, x: b(x), _inputs(torch.bfloat16, 3),
               torch.bfloat16)
    _assert_like(new, ref, torch.finfo(torch.bfloat16).eps / 2)
