"""Bi-directional feature pyramid (BiFPN) over the encoder's 1/4..1/32 maps.

GLID (Sec. 3.1, "Architecture") puts a Bi-FPN between the Swin encoder and
the query decoder "for better modeling the interaction across different
feature map scales". The fusion rule is EfficientDet's fast normalised
fusion; unlike mmdet's EfficientDet project (wired to P3-P7), this neck keeps
the encoder's own levels, including the 1/4-scale map that GLID's heads
dot-product with (eq. 4, 6, 8).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import (ConvModule, DepthwiseSeparableConvModule,
                      build_activation_layer)
from mmengine.model import BaseModule
from torch import Tensor

from glid_mm.models.layers.glid_bifpn_node import separable_node
from glid_mm.registry import MODELS


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum()`` in one read pass when both share a dense layout."""
    for fmt in (torch.contiguous_format, torch.channels_last):
        if a.is_contiguous(memory_format=fmt) and b.is_contiguous(
                memory_format=fmt) and a.stride() == b.stride():
            if fmt is torch.channels_last:
                a, b = a.permute(0, 2, 3, 1), b.permute(0, 2, 3, 1)
            return torch.dot(a.reshape(-1), b.reshape(-1))
    return (a * b).sum()


class _WeightedSum(torch.autograd.Function):
    """``sum_i w_i x_i`` whose weight gradients are dot products.

    Autograd's ``mul`` backward writes ``g * x_i`` to memory and then sums
    it; here ``<g, x_i>`` is one read pass. The input gradients ``w_i * g``
    are as autograd's.
    """

    @staticmethod
    def forward(ctx, w: Tensor, *xs: Tensor) -> Tensor:
        out = xs[0] * w[0]
        for wi, x in zip(w[1:], xs[1:]):
            out = torch.addcmul(out, x, wi)
        ctx.save_for_backward(w, *xs)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        w, *xs = ctx.saved_tensors
        g_w = None
        if ctx.needs_input_grad[0]:
            g_w = torch.stack([_dot(g, x) for x in xs]).to(w.dtype)
        g_xs = [
            g * wi if ctx.needs_input_grad[i + 1] else None
            for i, wi in enumerate(w)
        ]
        return (g_w, *g_xs)


class WeightedFusion(nn.Module):
    """Fast normalised fusion
    ``sum_i relu(w_i) x_i / (sum_i relu(w_i) + eps)``.

    EfficientDet (Tan et al., 2020), Sec. 3.3. One learnable scalar per input,
    initialised to 1 (a plain average at step 0).

    Args:
        num_inputs (int): Number of maps fused at this node.
        eps (float): Added to the weight sum. Defaults to 1e-4.
    """

    def __init__(self, num_inputs: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_inputs))
        self.eps = eps

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        if len(inputs) != self.weight.numel():
            raise ValueError(f'WeightedFusion of {self.weight.numel()} '
                             f'inputs got {len(inputs)}')
        w = F.relu(self.weight)
        w = w / (w.sum() + self.eps)
        return _WeightedSum.apply(w, *inputs)


class BiFPNBlock(nn.Module):
    """One top-down + bottom-up BiFPN pass over ``L`` same-width levels.

    Node ``i`` of the top-down path fuses ``P_i`` with the upsampled
    top-down map of level ``i + 1``; node ``i`` of the bottom-up path fuses
    ``P_i``, the top-down map ``P_i^td`` (levels strictly between the ends)
    and the downsampled output of level ``i - 1``. Each node is
    ``act -> depthwise-separable 3x3 conv -> norm`` (EfficientDet order).

    Args:
        channels (int): Width of every level.
        num_levels (int): Number of levels ``L``.
        norm_cfg (dict): Norm after each separable conv.
        act_cfg (dict): Activation applied to each fused sum.
        eps (float): Fusion epsilon.
        with_cp (bool): Keep only each node's inputs and output for
            backward and recompute its resize, fusion, activation and
            depthwise conv there (:func:`separable_node`). Defaults to
            False.
    """

    def __init__(self,
                 channels: int,
                 num_levels: int,
                 norm_cfg: dict,
                 act_cfg: dict,
                 eps: float,
                 with_cp: bool = False) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.with_cp = with_cp

        def conv() -> nn.Module:
            return DepthwiseSeparableConvModule(
                channels,
                channels,
                3,
                padding=1,
                norm_cfg=norm_cfg,
                act_cfg=None,
                dw_norm_cfg=None,
                dw_act_cfg=None)

        # top-down nodes for levels L-2 .. 0, bottom-up nodes for 1 .. L-1
        self.td_fuse = nn.ModuleList(
            [WeightedFusion(2, eps) for _ in range(num_levels - 1)])
        self.td_conv = nn.ModuleList([conv() for _ in range(num_levels - 1)])
        self.bu_fuse = nn.ModuleList([
            WeightedFusion(3 if i < num_levels - 1 else 2, eps)
            for i in range(1, num_levels)
        ])
        self.bu_conv = nn.ModuleList([conv() for _ in range(num_levels - 1)])
        self.act = build_activation_layer(act_cfg)

    @staticmethod
    def _resize(x: Tensor, size: Tuple[int, int], down: bool) -> Tensor:
        if down:
            # 3x3/2 max pool (EfficientDet); ceil matches Swin's padded merge
            x = F.max_pool2d(x, 3, stride=2, padding=1)
        if x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode='nearest')
        return x

    def _node(self, fuse: WeightedFusion, conv: nn.Module, down: bool,
              inputs: List[Tensor]) -> Tensor:
        """``act(fuse(inputs[:-1] + [resize(inputs[-1])]))`` -> separable
        conv; with ``with_cp`` only the inputs and the output are kept for
        backward (:func:`separable_node`)."""

        def pre(*xs: Tensor) -> Tensor:
            *same, other = xs
            other = self._resize(other, same[0].shape[-2:], down)
            return conv.depthwise_conv(self.act(fuse([*same, other])))

        if self.with_cp:
            params = [fuse.weight, *conv.depthwise_conv.parameters()]
            return separable_node(pre, params, conv.pointwise_conv, inputs)
        return conv.pointwise_conv(pre(*inputs))

    def forward(self, feats: List[Tensor]) -> List[Tensor]:
        L = self.num_levels
        td = [None] * L
        td[L - 1] = feats[L - 1]
        for k, i in enumerate(range(L - 2, -1, -1)):
            td[i] = self._node(self.td_fuse[k], self.td_conv[k], False,
                               [feats[i], td[i + 1]])
        outs = [td[0]]
        for k, i in enumerate(range(1, L)):
            inputs = [feats[i], td[i]] if i < L - 1 else [feats[i]]
            outs.append(
                self._node(self.bu_fuse[k], self.bu_conv[k], True,
                           inputs + [outs[-1]]))
        return outs


@MODELS.register_module()
class BiFPN(BaseModule):
    """BiFPN neck of GLID over the encoder's four stages (1/4 .. 1/32).

    Paper: GLID Sec. 3.1 "Architecture" (a Bi-FPN between encoder and
    decoder); fusion and node layout follow EfficientDet. Lateral 1x1 convs
    (+ norm) bring every level to ``out_channels``; ``num_repeats`` BiFPN
    blocks (top-down then bottom-up, fast normalised fusion) follow. All
    levels are returned, so the finest output is the 1/4-scale map the GLID
    heads dot-product with (eq. 4, 6, 8). The GLID configs use 256 channels
    and 11 blocks: 33.3 GFLOPs / 5.02 M parameters for Swin-B at 640x640,
    measured by ``tools/benchmark/model_complexity.py`` (mmengine's
    FlopAnalyzer, one multiply-add = one FLOP), against supp. Table 2's
    33.8 GFLOPs / 5.0 M.

    Drop-in for mmdet / mmseg ``FPN``: ``num_outs``, ``start_level``,
    ``end_level``, ``add_extra_convs`` and ``relu_before_extra_convs`` mean
    what they mean there, so ``type='FPN'`` can become ``type='BiFPN'`` in
    a stock config. Levels beyond the used inputs (RetinaNet's P6 / P7) are
    made *before* the Bi-FPN blocks and take part in the bidirectional
    fusion, as EfficientDet's P6 / P7 do: by a stride-2 max pool of the
    level below (``add_extra_convs=False``, FPN's default) or a stride-2
    3x3 conv + norm of the top used input (``'on_input'`` / ``True``) or
    of its lateral map (``'on_lateral'``; ``'on_output'`` is the same
    here: before the blocks the top level's output is its lateral map),
    later extras from the previous extra level.

    Args:
        in_channels (Sequence[int]): Channels of the input levels, fine to
            coarse, e.g. ``[128, 256, 512, 1024]`` for Swin-B.
        out_channels (int): Width of every output level. Defaults to 256.
        num_repeats (int): Number of stacked BiFPN blocks. Defaults to 7.
        num_outs (int, optional): Output levels (used inputs + extras).
            Defaults to the number of used inputs.
        start_level (int): First input level used. Defaults to 0.
        end_level (int): Last input level used (inclusive), -1 = the last.
            Defaults to -1.
        add_extra_convs (bool | str): How extra levels are made (see
            above). Defaults to False.
        relu_before_extra_convs (bool): ReLU before the second and later
            extra convs (FPN's option). Defaults to False.
        norm_cfg (dict): Norm of lateral, extra and node convs. Defaults to
            ``dict(type='BN', momentum=0.01, eps=1e-3)`` (EfficientDet); use
            ``SyncBN`` in multi-GPU configs with few images per GPU.
        act_cfg (dict): Activation of each fused sum. Defaults to SiLU
            (swish, as EfficientDet).
        eps (float): Fast-fusion epsilon. Defaults to 1e-4.
        channels_last (bool): Run the convolutions on channels-last
            (NHWC) tensors, on which oneDNN (CPU) and cuDNN (GPU) run
            depthwise and 1x1 convolutions faster; results equal the NCHW
            ones to float rounding (tested). Outputs are then channels-last
            too (same shape and values). Defaults to True.
        with_cp (bool): Keep only each node's inputs and output for
            backward: the cheap part (resize, fusion, activation, depthwise
            conv) is recomputed, BN's input is recovered from its output
            (InPlace-ABN's trick) and the 1x1 conv is not rerun; outputs,
            gradients and BN statistics equal the plain path's (tested)
            (:func:`glid_mm.models.layers.glid_bifpn_node.separable_node`;
            SyncBN and other norms keep the 1x1 and norm maps). Defaults to
            False.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Shapes:
        inputs: ``len(in_channels)`` maps ``[B, in_channels[i], H_i,
        W_i]``, fine to coarse, each used one at most half the size of the
        previous one (ceil).
        outputs: tuple of ``num_outs`` maps ``[B, out_channels, H_i, W_i]``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 256,
                 num_repeats: int = 7,
                 num_outs: Optional[int] = None,
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='SiLU'),
                 eps: float = 1e-4,
                 channels_last: bool = True,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if any(int(c) <= 0 for c in in_channels):
            raise ValueError(
                f'in_channels must be positive, got {in_channels}')
        if out_channels <= 0:
            raise ValueError(
                f'out_channels must be positive, got {out_channels}')
        if num_repeats < 1:
            raise ValueError(f'num_repeats must be >= 1, got {num_repeats}')
        end = len(in_channels) - 1 if end_level == -1 else end_level
        if not 0 <= start_level <= end < len(in_channels):
            raise ValueError(
                f'start_level={start_level} and end_level={end_level} must '
                f'select input levels of in_channels={in_channels}')
        used = end - start_level + 1
        num_outs = used if num_outs is None else num_outs
        if num_outs < used:
            raise ValueError(f'num_outs={num_outs} is below the {used} used '
                             f'input levels (start_level={start_level}, '
                             f'end_level={end_level})')
        if num_outs < 2:
            raise ValueError('BiFPN needs at least 2 levels, got '
                             f'num_outs={num_outs}')
        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        if add_extra_convs not in (False, 'on_input', 'on_lateral',
                                   'on_output'):
            raise ValueError(
                "add_extra_convs must be False, True, 'on_input', "
                f"'on_lateral' or 'on_output', got {add_extra_convs!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.start_level, self.end_level = start_level, end
        self.num_outs = num_outs
        self.num_levels = num_outs
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.channels_last = channels_last
        self.lateral_convs = nn.ModuleList([
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
            for c in in_channels[start_level:end + 1]
        ])
        self.extra_convs = nn.ModuleList()
        if add_extra_convs:
            for k in range(num_outs - used):
                c = in_channels[end] if (
                    k == 0 and add_extra_convs == 'on_input') else \
                    out_channels
                self.extra_convs.append(
                    ConvModule(
                        c,
                        out_channels,
                        3,
                        stride=2,
                        padding=1,
                        norm_cfg=norm_cfg,
                        act_cfg=None))
        self.blocks = nn.ModuleList([
            BiFPNBlock(out_channels, self.num_levels, norm_cfg, act_cfg, eps,
                       with_cp) for _ in range(num_repeats)
        ])

    def _extra_levels(self, top_input: Tensor,
                      feats: List[Tensor]) -> List[Tensor]:
        """The ``num_outs - used`` levels above the used inputs."""
        extras = []
        for k in range(self.num_outs - len(feats)):
            below = extras[-1] if extras else feats[-1]
            if not self.add_extra_convs:
                extras.append(F.max_pool2d(below, 1, stride=2))
                continue
            if k == 0 and self.add_extra_convs == 'on_input':
                source = top_input
            else:
                source = below
                if k > 0 and self.relu_before_extra_convs:
                    source = F.relu(source)
            extras.append(self.extra_convs[k](source))
        return extras

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'BiFPN expects {len(self.in_channels)} levels '
                             f'(in_channels={self.in_channels}), got '
                             f'{len(inputs)}')
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            if x.dim() != 4 or x.shape[1] != c:
                raise ValueError(f'BiFPN input level {i} must be [B, {c}, H, '
                                 f'W], got {tuple(x.shape)}')
        inputs = list(inputs[self.start_level:self.end_level + 1])
        for i in range(1, len(inputs)):
            prev, cur = inputs[i - 1].shape[-2:], inputs[i].shape[-2:]
            if any(c > (p + 1) // 2 for p, c in zip(prev, cur)):
                raise ValueError(
                    'BiFPN levels must go fine to coarse with stride 2: '
                    f'level {self.start_level + i - 1} is {tuple(prev)}, '
                    f'level {self.start_level + i} is {tuple(cur)}')
        if self.channels_last:
            inputs = [
                x.contiguous(memory_format=torch.channels_last) for x in inputs
            ]
        feats = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        feats += self._extra_levels(inputs[-1], feats)
        for block in self.blocks:
            feats = block(feats)
        return tuple(feats)
