"""FLOPs and parameters of a model, in total and per part.

FLOPs are counted by mmengine's :class:`~mmengine.analysis.FlopAnalyzer`
(fvcore's counter): the model is traced once with ``torch.jit`` on the given
inputs and each traced operator is charged by a handle. Convention: **one
multiply-add counts as one FLOP** (so a ``[M, K] x [K, N]`` matmul is
``M * K * N``); convolutions and linears count their multiply-adds, norms
2-5 per element, bilinear upsampling and ``grid_sample`` 4 per output
element; element-wise activations, additions and softmax are free.
Operators without a handle are skipped and listed in ``unsupported`` (so a
total is a lower bound where that list has work in it). To the default
handles this module adds:

- ``aten::baddbmm`` (what ``nn.MultiheadAttention`` computes ``Q K^T`` with
  when it returns weights and has a mask): counted as the ``bmm`` it holds;
- ``aten::scaled_dot_product_attention``: ``B * H * L_q * L_k * (E + E_v)``
  (``Q K^T`` and the weighted sum of ``V``).

For a model-FLOPs utilisation (MFU) against a GPU's peak, which counts a
multiply-add as 2 FLOPs, multiply these counts by 2 (see
:func:`glid_tools.benchmark.pretrain_step.mfu`).

Parts (``parts=``) are named groups of submodules, e.g. for GLID
``dict(encoder=['backbone'], bifpn=['neck'], decoder=['decoder'],
head=['panoptic_head'])``. A part's FLOPs are the operators run inside its
modules' ``__call__``; a module listed in one part and nested inside a
module of another part is charged to the inner part only; what no part
claims is ``other`` (glue code in the detector: query embeddings,
two-stage proposal selection). mmdet calls some heads as
``head.forward(...)``, outside the ``__call__`` that FlopAnalyzer scopes
by; while counting, those calls are routed through ``__call__`` so the
head's own operators are charged to the head.
"""
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

Parts = Dict[str, Sequence[str]]


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def _baddbmm_flop(inputs: List, outputs: List) -> int:
    # baddbmm(input, batch1 [n, c, t], batch2 [n, t, d])
    n, c, t = get_shape(inputs[1])
    d = get_shape(inputs[2])[-1]
    return n * c * t * d


def _sdpa_flop(inputs: List, outputs: List) -> int:
    # query [..., L_q, E], key [..., L_k, E], value [..., L_k, E_v]
    q, k, v = (get_shape(x) for x in inputs[:3])
    return _prod(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])


EXTRA_FLOP_HANDLES = {
    'aten::baddbmm': _baddbmm_flop,
    'aten::scaled_dot_product_attention': _sdpa_flop,
}


class CallModule(nn.Module):
    """Wrap ``fn(model, *inputs)`` as a module for jit tracing.

    The model sits at ``self.model`` so FlopAnalyzer's module names are
    ``'model.<name>'``; non-tensor arguments (data samples) are closed over
    by ``fn``.
    """

    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(self.model, *inputs)


@contextmanager
def _calls_through_call(model: nn.Module, names: Sequence[str]):
    """Route explicit ``module.forward(...)`` calls of the named modules
    through ``module(...)`` while counting.

    FlopAnalyzer scopes operators by module ``__call__`` hooks; mmdet calls
    ``self.panoptic_head.forward(...)`` / ``self.bbox_head.forward(...)``
    directly, which would charge the head's own operators (e.g.
    Mask2Former's mask einsum) to its caller. The instance attribute
    ``forward`` set here enters ``__call__`` once and then runs the
    original method; it is removed afterwards.
    """
    patched = []
    for name in names:
        module = model.get_submodule(name)
        if 'forward' in vars(module):
            continue
        original = module.forward
        state = dict(inside=False)

        def forward(*args,
                    _module=module,
                    _orig=original,
                    _state=state,
                    **kwargs):
            if _state['inside']:
                return _orig(*args, **kwargs)
            _state['inside'] = True
            try:
                return _module(*args, **kwargs)
            finally:
                _state['inside'] = False

        module.forward = forward
        patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward


def _claimed(parts: Parts) -> List[Tuple[str, str]]:
    names = [(part, name) for part, mods in parts.items() for name in mods]
    seen = set()
    for _, name in names:
        if name in seen:
            raise ValueError(f'module {name!r} is listed in two parts')
        seen.add(name)
    return names


def _exclusive(values: Dict[str, float], parts: Parts,
               total: float) -> Dict[str, float]:
    """Per part: its modules' values minus those of nested modules claimed
    by other parts; ``other`` = total minus all parts."""
    claimed = _claimed(parts)
    out = {}
    for part, mods in parts.items():
        value = 0
        for name in mods:
            value += values.get(name, 0)
            for other_part, other in claimed:
                if other_part != part and other.startswith(name + '.'):
                    value -= values.get(other, 0)
        out[part] = value
    out['other'] = total - sum(out.values())
    return out


def param_counts(model: nn.Module,
                 parts: Optional[Parts] = None) -> Dict[str, int]:
    """``total`` parameters and, with ``parts``, each part's and ``other``."""
    per_module = {}
    for name, module in model.named_modules():
        per_module[name] = sum(p.numel() for p in module.parameters())
    total = per_module['']
    out = dict(total=total)
    if parts:
        for part, mods in parts.items():
            for name in mods:
                if name not in per_module:
                    raise KeyError(f'part {part!r}: the model has no module '
                                   f'{name!r}')
        out.update(_exclusive(per_module, parts, total))
    return out


@torch.no_grad()
def count_flops(model: nn.Module,
                fn: Callable,
                inputs: Tuple[torch.Tensor, ...],
                parts: Optional[Parts] = None) -> Dict[str, object]:
    """FLOPs (multiply-adds, see the module docstring) of ``fn(model,
    *inputs)``.

    Args:
        model: The model; its mode (train / eval) is kept.
        fn: What to count, e.g. ``lambda m, x: m.extract_feat(x)``; it must
            return tensors (or tuples / dicts of them).
        inputs: Tensor inputs of ``fn``, e.g. ``(images [B, 3, H, W],)``.
        parts: Named module groups (names relative to ``model``).

    Returns:
        dict: ``total`` (int), ``parts`` ({part: int, 'other': int}, only
        with ``parts``) and ``unsupported`` ({operator: calls}).
    """
    if parts:
        param_counts(model, parts)  # checks the module names
    wrapper = CallModule(model, fn)
    analyzer = FlopAnalyzer(wrapper, tuple(inputs))
    analyzer.set_op_handle(**EXTRA_FLOP_HANDLES)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    names = [n for mods in (parts or {}).values() for n in mods]
    with _calls_through_call(model, names):
        total = int(analyzer.total())  # traces here (results are cached)
        by_module = analyzer.by_module()
    result = dict(total=total, unsupported=dict(analyzer.unsupported_ops()))
    if parts:
        by_module = {
            name[len('model.'):]: int(v)
            for name, v in by_module.items() if name.startswith('model.')
        }
        result['parts'] = _exclusive(by_module, parts, total)
    return result


# Operators that are free under the fvcore convention (element-wise maths,
# reductions, data movement, random numbers, losses on a few values):
# FlopAnalyzer skips them anyway; only other skipped operators are worth a
# note next to a total.
FREE_OPS = frozenset('aten::' + op for op in (
    'abs add add_ addcmul_ all any arange argmax bitwise_not cat '
    'broadcast_tensors ceil clamp clamp_ clone contiguous copy_ cos '
    'cumsum detach div div_ dropout elu embedding empty eq exp expand '
    'fill_ flatten flip floor floor_divide full full_like gather ge gelu '
    'gt index index_put_ index_select im2col l1_loss le log log_softmax '
    'lt masked_fill masked_fill_ max max_pool2d mean min mse_loss mul '
    'mul_ ne neg new_full new_ones new_zeros nonzero norm ones ones_like '
    'pad permute pixel_shuffle pow rand randn relu relu_ remainder '
    'repeat repeat_interleave reshape roll rsqrt rsub scatter '
    'select sigmoid sigmoid_ silu silu_ sin slice softmax split sqrt '
    'square squeeze stack std sub sub_ sum tanh topk transpose unbind '
    'unflatten unsqueeze var view where zero_ zeros zeros_like '
    'avg_pool2d constant_pad_nd erf exp_ hardtanh leaky_relu log_sigmoid '
    'logical_and logical_not logical_or masked_select narrow sort '
    'binary_cross_entropy_with_logits cross_entropy_loss '
    '_shape_as_tensor meshgrid linspace int_repr to type_as alias '
    'lift_fresh'.split()))


def unsupported_note(unsupported: Dict[str, int]) -> str:
    """A short note naming skipped operators that are not free by the
    convention (element-wise maths and data movement are; see
    :data:`FREE_OPS`)."""
    ops = {k: v for k, v in unsupported.items() if k not in FREE_OPS}
    if not ops:
        return ''
    shown = ', '.join(f'{k} x{v}' for k, v in sorted(ops.items())[:8])
    return f'not counted by FlopAnalyzer: {shown}'
