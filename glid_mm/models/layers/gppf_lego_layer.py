"""One lego layer of GPPF's task-level dynamic network (Sec. 3.2, Fig. 2a).

A lego layer holds ``N`` units of the same architecture with separate
weights and mixes their outputs with per-task weights (eq. 1). It knows
nothing about tasks or controllers: :class:`LegoResNet` samples the weights
and tells each layer what to run.
"""
from typing import List, Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule

from glid_mm.models.layers.gppf_cross_task_sync_bn import checkpoint_sync_bn


class LegoStem(BaseModule):
    """ResNet's stem convolution as a lego unit: ``conv1 -> bn1 -> relu``.

    Named as in mmdet/mmseg's ``ResNet`` (``conv1``, ``bn1``) so that an
    extracted path loads into their ResNet with no renaming. The max-pool
    that follows has no weights and is shared by :class:`LegoResNet`.

    Args:
        in_channels (int): Input channels. Defaults to 3.
        stem_channels (int): Output channels. Defaults to 64.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.

    Shapes: ``[B, in_channels, H, W] -> [B, stem_channels, H/2, W/2]``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        stem_channels: int = 64,
        conv_cfg: Optional[dict] = None,
        norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        self.conv1 = build_conv_layer(
            conv_cfg,
            in_channels,
            stem_channels,
            kernel_size=7,
            stride=2,
            padding=3,
            bias=False)
        self.norm1_name, norm1 = build_norm_layer(
            norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(getattr(self, self.norm1_name)(self.conv1(x)))


class LegoLayer(BaseModule):
    """``N`` units of one architecture, mixed by weights (GPPF eq. 1).

    Args:
        units (list[nn.Module]): The ``N >= 1`` candidate units; each maps
            ``[B, C_in, H, W]`` to the same ``[B, C_out, H', W']``.
        with_cp (bool): Gradient checkpointing of every unit that runs
            with autograd (GPPF App. D.1), by
            :func:`~.cross_task_sync_bn.checkpoint_sync_bn`: the
            recomputation reuses the forward pass's
            :class:`CrossTaskSyncBN` statistics, so processes running
            different units never pair statistics in the backward pass
            and running statistics are updated once. Units must not
            checkpoint themselves. Defaults to False.

    ``forward(x, weights=None, index=None, hard=False, run_all=False)``:

    - ``index`` (int): run only unit ``index`` (evaluation, fixed path);
      with ``run_all=True`` the other units also run, under ``no_grad``
      and with their outputs discarded, so that every process calls the
      same cross-process BatchNorm layers in the same order (SIMT processes
      on different fixed paths).
    - ``weights`` (``[N]`` tensor): return ``sum_k weights[k] * unit_k(x)``.
      Soft weights (``hard=False``) run every unit with autograd (the
      paper's default; about ``N`` times the activation memory). With
      ``hard=True`` the weights must be one-hot straight-through samples
      (``F.gumbel_softmax(hard=True)``): the
      selected unit runs with autograd and the others under ``no_grad``:
      their outputs still carry the controller's straight-through gradient
      ``d out / d weights[k] = unit_k(x)``, but their weights get none (their
      weight in the forward pass is 0), so the result and all gradients
      equal the dense straight-through computation while storing the
      activations of one unit only. Every unit still runs, so BatchNorm
      statistics and cross-process SyncBN calls stay the same on every
      process (see :class:`CrossTaskSyncBN`).
    """

    def __init__(self, units: List[nn.Module], with_cp: bool = False) -> None:
        super().__init__()
        if len(units) < 1:
            raise ValueError('LegoLayer needs at least one unit')
        self.units = nn.ModuleList(units)
        self.with_cp = with_cp

    def _run(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Unit ``k`` on ``x`` with autograd (checkpointed if asked)."""
        if self.with_cp and torch.is_grad_enabled() and x.requires_grad:
            return checkpoint_sync_bn(self.units[k], x)
        return self.units[k](x)

    @property
    def num_units(self) -> int:
        return len(self.units)

    def forward(self,
                x: torch.Tensor,
                weights: Optional[torch.Tensor] = None,
                index: Optional[int] = None,
                hard: bool = False,
                run_all: bool = False) -> torch.Tensor:
        if (weights is None) == (index is None):
            raise ValueError('LegoLayer.forward takes exactly one of '
                             '`weights` and `index`')
        if index is not None:
            if not 0 <= index < self.num_units:
                raise IndexError(f'unit index {index} out of range for '
                                 f'{self.num_units} units')
            if not run_all:
                return self._run(index, x)
            out = None
            for k, unit in enumerate(self.units):  # same order everywhere
                if k == index:
                    out = self._run(k, x)
                else:
                    with torch.no_grad():
                        unit(x)
            return out
        if weights.shape != (self.num_units, ):
            raise ValueError(f'weights must have shape ({self.num_units},), '
                             f'got {tuple(weights.shape)}')
        if not hard:
            return sum(weights[k] * self._run(k, x)
                       for k in range(self.num_units))
        selected = int(weights.detach().argmax())
        out = 0
        for k, unit in enumerate(self.units):  # same order everywhere
            if k == selected:
                out = out + weights[k] * self._run(k, x)
            else:
                with torch.no_grad():
                    other = unit(x)
                out = out + weights[k] * other
        return out
