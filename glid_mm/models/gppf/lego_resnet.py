"""GPPF's task-level dynamic ResNet: lego layers with per-task controllers."""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.backbones.resnet import ResNet
from mmdet.models.layers import ResLayer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from glid_mm.registry import MODELS
from .cross_task_sync_bn import CrossTaskSyncBN
from .lego_layer import LegoLayer, LegoStem
from .path_export import lego_to_resnet_state_dict


def _check_task_name(name) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f'task names must be Python identifiers (they key '
                         f'parameters), got {name!r}')


@MODELS.register_module(scopes=('mmdet', 'mmseg', 'mmpretrain'))
class LegoResNet(BaseModule):
    """ResNet whose every block (and stem) is a lego layer of ``N`` units.

    GPPF Sec. 3.2 (Fig. 2a): ``L`` lego layers, each of ``N`` units with the
    same architecture (mmdet's ResNet ``Bottleneck`` blocks, built by
    mmdet's ``ResLayer``; the stem ``conv1 + bn1``) but separate weights.
    For each task ``t`` and layer ``l`` a controller holds logits whose
    softmax is the selection probability ``p_l^t`` (initialised uniform).

    - Training: weights ``u_l^t = gumbel_softmax(log p_l^t, tau)`` (eq. 1),
      one draw per layer per forward; the layer returns
      ``sum_k u_l^t[k] * unit_k(x)``. Soft by default (the paper's choice,
      about ``N`` times the activation memory); ``hard=True`` uses the
      straight-through one-hot sample (see :class:`LegoLayer`).
      ``tau`` starts at ``temperature`` and is set each iteration by
      :class:`GumbelTemperatureHook` (App. D.1: 5.0 -> 0.01).
    - Evaluation: only the most probable unit of each layer runs (and only
      it is computed).
    - Fixed path (Sec. 3.3, fixed-path fine-tuning): a task listed in
      ``fixed_paths`` (or fixed later by :meth:`fix_path`) runs exactly its
      path in training and evaluation; its controller is unused.
      For fine-tuning with stock configs (and DDP, which rejects unused
      units), extract a plain ResNet with :meth:`static_state_dict` or
      ``tools/gppf_extract_backbone.py`` instead, as the paper does.

    Under SIMT with :class:`CrossTaskSyncBN` every process must run the
    same BatchNorm layers in the same order, whatever its task: in
    multi-process training every unit runs (units off the fixed path under
    ``no_grad``), and with hard sampling or fixed paths the SyncBN backward
    stays local (see :meth:`_update_sync_backward`).

    How the task reaches the backbone: mmdet / mmseg / mmpretrain models call
    ``self.backbone(inputs)`` with the image tensor only, and their heads
    must stay unchanged. The task is carried by the data samples' metainfo
    (``data_samples[i].metainfo['task']``); :class:`GPPFMultiTaskModel`,
    which receives the data samples, reads it and runs the task model inside
    ``with backbone.using_task(task):``. The current task is thus state of
    this module (not a process-wide global), set for exactly one forward;
    with no task set, ``default_task`` (or the only task) is used, which is
    how a stock single-task config (dynamic fine-tuning of one new task)
    uses this backbone unchanged.

    Args:
        task_names (Sequence[str]): Tasks with a controller (identifiers,
            e.g. ``('det', 'seg', 'cls')``).
        depth (int): ResNet depth, a key of mmdet ``ResNet.arch_settings``
            (18, 34, 50, 101, 152). Defaults to 50.
        num_units (int): Units per lego layer ``N``. Defaults to 2
            (the paper's default, Table 1).
        lego_stem (bool): Make the stem a lego layer too (App. B: "all
            tasks like to share the stem layer", i.e. it is selectable).
            Defaults to True.
        default_task (str, optional): Task used when none is set.
            Defaults to None (the only task if there is one).
        temperature (float): Initial Gumbel-Softmax temperature ``tau``.
            Defaults to 5.0 (App. D.1).
        hard (bool): Straight-through hard samples instead of soft mixing.
            Defaults to False (Sec. 3.2: soft logits are preferable).
        fixed_paths (dict[str, Sequence[int]], optional): Per task, one unit
            index per lego layer. Defaults to None.
        in_channels (int): Input channels. Defaults to 3.
        stem_channels (int): Stem output channels. Defaults to 64.
        base_channels (int): Channels of the first stage. Defaults to 64.
        num_stages (int): ResNet stages, 1-4. Defaults to 4.
        strides (Sequence[int]): Stride of each stage. Defaults to
            ``(1, 2, 2, 2)``.
        dilations (Sequence[int]): Dilation of each stage. Defaults to
            ``(1, 1, 1, 1)``.
        out_indices (Sequence[int]): Stages whose output is returned.
            Defaults to ``(0, 1, 2, 3)``.
        style (str): ``'pytorch'`` or ``'caffe'``. Defaults to 'pytorch'.
        avg_down (bool): AvgPool downsampling in shortcuts. Defaults to False.
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict): Norm config; ``dict(type='CrossTaskSyncBN')`` for
            SIMT (cross-task statistics). Defaults to ``dict(type='BN')``.
        norm_eval (bool): Keep BN in eval mode while training (fine-tuning).
            Defaults to False.
        with_cp (bool): Gradient checkpointing inside units. Defaults to
            False.
        zero_init_residual (bool): Zero-init the last BN of each block.
            Defaults to True.
        init_cfg (dict or list[dict], optional): Defaults to Kaiming-normal
            convs (BN keeps weight 1, bias 0).

    Shapes: ``x: [B, in_channels, H, W]`` -> tuple of
    ``[B, base_channels * 2**i * expansion, H / 2**(i+2), W / 2**(i+2)]``
    for ``i`` in ``out_indices`` (with the default strides).
    """

    def __init__(self,
                 task_names: Sequence[str],
                 depth: int = 50,
                 num_units: int = 2,
                 lego_stem: bool = True,
                 default_task: Optional[str] = None,
                 temperature: float = 5.0,
                 hard: bool = False,
                 fixed_paths: Optional[Dict[str, Sequence[int]]] = None,
                 in_channels: int = 3,
                 stem_channels: int = 64,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 avg_down: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 init_cfg=None) -> None:
        if init_cfg is None:
            # BN already starts at weight 1, bias 0 (and the zero-init of
            # the residual BN below must survive init_weights)
            init_cfg = [dict(type='Kaiming', layer='Conv2d')]
        super().__init__(init_cfg)
        if isinstance(task_names, str) or len(task_names) == 0:
            raise ValueError(f'task_names must be a non-empty sequence of '
                             f'names, got {task_names!r}')
        for name in task_names:
            _check_task_name(name)
        if len(set(task_names)) != len(task_names):
            raise ValueError(f'task_names has duplicates: {task_names}')
        if depth not in ResNet.arch_settings:
            raise KeyError(f'LegoResNet.depth={depth!r} is not one of '
                           f'{sorted(ResNet.arch_settings)}')
        if not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f'num_units must be a positive int, got '
                             f'{num_units!r}')
        if not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be in 1..4, got {num_stages}')
        if len(strides) < num_stages or len(dilations) < num_stages:
            raise ValueError('strides and dilations need one entry per stage')
        if not out_indices or max(out_indices) >= num_stages or min(
                out_indices) < 0:
            raise ValueError(f'out_indices {out_indices} must lie in '
                             f'0..{num_stages - 1}')
        if default_task is not None and default_task not in task_names:
            raise KeyError(f'default_task {default_task!r} is not in '
                           f'task_names {list(task_names)}')
        self.task_names = tuple(task_names)
        self.default_task = default_task
        self.num_units = num_units
        self.lego_stem = lego_stem
        self.hard = bool(hard)
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        self.set_temperature(temperature)
        self._task: Optional[str] = None

        block, stage_blocks = ResNet.arch_settings[depth]

        def stem():
            return LegoStem(in_channels, stem_channels, conv_cfg, norm_cfg)

        self.lego = nn.ModuleDict()
        if lego_stem:
            self.lego['stem'] = LegoLayer([stem() for _ in range(num_units)])
        else:
            self.stem = stem()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self._stage_ends: List[int] = []
        inplanes = stem_channels
        for i, num_blocks in enumerate(stage_blocks[:num_stages]):
            planes = base_channels * 2**i
            replicas = [
                ResLayer(
                    block=block,
                    inplanes=inplanes,
                    planes=planes,
                    num_blocks=num_blocks,
                    stride=strides[i],
                    dilation=dilations[i],
                    style=style,
                    avg_down=avg_down,
                    with_cp=with_cp,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg) for _ in range(num_units)
            ]
            for j in range(num_blocks):
                self.lego[f'layer{i + 1}_{j}'] = LegoLayer(
                    [replica[j] for replica in replicas])
            self._stage_ends.append(len(self.lego) - 1)
            inplanes = planes * block.expansion
        if zero_init_residual:
            # each residual branch starts as identity (mmdet's ResNet
            # option; done here because its init_cfg override does not
            # reach the `norm3` property of mmdet's blocks)
            last_norm = 'norm3' if block.expansion == 4 else 'norm2'
            for name, layer in self.lego.items():
                if name != 'stem':
                    for unit in layer.units:
                        nn.init.zeros_(getattr(unit, last_norm).weight)
        self.out_channels = tuple(base_channels * 2**i * block.expansion
                                  for i in self.out_indices)

        self.controllers = nn.ParameterDict({
            name: nn.Parameter(torch.zeros(self.num_layers, num_units))
            for name in self.task_names
        })
        self.fixed_paths: Dict[str, Tuple[int, ...]] = {}
        for name, path in (fixed_paths or {}).items():
            self.fix_path(name, path)
        self._has_cross_bn = any(
            isinstance(m, CrossTaskSyncBN) for m in self.modules())
        self._update_sync_backward()

    # ------------------------------------------------------------ tasks
    @property
    def num_layers(self) -> int:
        """Number of lego layers ``L`` (17 for ResNet-50 with lego stem)."""
        return len(self.lego)

    @property
    def layer_names(self) -> List[str]:
        """Lego layer names in order (``'stem'``, ``'layer1_0'``, ...)."""
        return list(self.lego.keys())

    def _check_task(self, task: str) -> None:
        if task not in self.controllers:
            raise KeyError(f'unknown task {task!r}; LegoResNet has '
                           f'controllers for {list(self.task_names)}')

    @property
    def current_task(self) -> str:
        """The task the next forward runs (see the class docstring)."""
        if self._task is not None:
            return self._task
        if self.default_task is not None:
            return self.default_task
        if len(self.task_names) == 1:
            return self.task_names[0]
        raise RuntimeError(
            f'LegoResNet has tasks {list(self.task_names)} and no current '
            f'task: run it inside `with backbone.using_task(name):` (as '
            f'GPPFMultiTaskModel does from data_samples metainfo["task"]) or '
            f'set default_task')

    @contextmanager
    def using_task(self, task: str) -> Iterator[None]:
        """Run the forwards inside the ``with`` block for ``task``."""
        self._check_task(task)
        previous, self._task = self._task, task
        try:
            yield
        finally:
            self._task = previous

    def set_temperature(self, temperature: float) -> None:
        """Set the Gumbel-Softmax temperature ``tau`` (eq. 1), ``> 0``."""
        if not float(temperature) > 0:
            raise ValueError(f'Gumbel temperature must be > 0, got '
                             f'{temperature!r}')
        self.temperature = float(temperature)

    def selection_probs(self, task: str) -> torch.Tensor:
        """``p^t``: ``[L, N]`` softmax of the controller (detached)."""
        self._check_task(task)
        return self.controllers[task].detach().softmax(dim=-1)

    def path(self, task: str) -> List[int]:
        """The unit run per layer in evaluation: fixed path or argmax."""
        self._check_task(task)
        if task in self.fixed_paths:
            return list(self.fixed_paths[task])
        return self.controllers[task].detach().argmax(dim=-1).tolist()

    def fix_path(self, task: str, path: Optional[Sequence[int]] = None
                 ) -> List[int]:
        """Fix ``task``'s path (``None``: its current argmax path)."""
        self._check_task(task)
        if path is None:
            path = self.controllers[task].detach().argmax(dim=-1).tolist()
        path = [int(k) for k in path]
        if len(path) != self.num_layers:
            raise ValueError(f'path for task {task!r} has {len(path)} '
                             f'entries; LegoResNet has {self.num_layers} '
                             f'lego layers {self.layer_names}')
        bad = [k for k in path if not 0 <= k < self.num_units]
        if bad:
            raise ValueError(f'path for task {task!r} has unit indices {bad} '
                             f'outside 0..{self.num_units - 1}')
        self.fixed_paths[task] = tuple(path)
        self._update_sync_backward()
        return path

    def release_path(self, task: str) -> None:
        """Let ``task`` select units by its controller again."""
        self._check_task(task)
        self.fixed_paths.pop(task, None)
        self._update_sync_backward()

    def _update_sync_backward(self) -> None:
        """Exact SyncBN backward only when every unit is in every graph.

        Soft mixing puts every unit in every process's autograd graph. With
        hard samples or fixed paths processes differentiate through
        different units, so a per-layer backward all-reduce would pair
        unrelated layers; :class:`CrossTaskSyncBN` then keeps its forward
        statistics cross-process and its backward local.
        """
        exact = not self.hard and not self.fixed_paths
        for module in self.modules():
            if isinstance(module, CrossTaskSyncBN):
                module.sync_backward = exact

    def _aligned_forward(self) -> bool:
        """Run every unit (SIMT with cross-process BN, in training)."""
        return (self.training and self._has_cross_bn
                and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1)

    def static_state_dict(self,
                          task: Optional[str] = None,
                          path: Optional[Sequence[int]] = None) -> dict:
        """A plain mmdet/mmseg ``ResNet`` state dict of one path.

        Give ``path`` or ``task`` (its :meth:`path`); controllers dropped.
        """
        if (task is None) == (path is None):
            raise ValueError('give exactly one of task and path')
        if path is None:
            path = self.path(task)
        return lego_to_resnet_state_dict(self.state_dict(), path=path)

    def sample_weights(self, task: str) -> torch.Tensor:
        """Eq. 1: ``u^t = gumbel_softmax(log p^t, tau)``, ``[L, N]``.

        One Gumbel draw per layer; rows sum to 1. With ``hard=True`` rows
        are one-hot in value with the soft sample's gradient
        (straight-through). Softmax is shift invariant, so the controller
        logits stand for ``log p`` directly.
        """
        self._check_task(task)
        return F.gumbel_softmax(
            self.controllers[task], tau=self.temperature, hard=self.hard,
            dim=-1)

    # ---------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``x: [B, C, H, W]`` -> tuple of stage outputs (``out_indices``)."""
        task = self.current_task
        weights, indices = None, None
        if task in self.fixed_paths:
            indices = self.fixed_paths[task]
        elif self.training:
            weights = self.sample_weights(task)
        else:
            indices = self.controllers[task].detach().argmax(-1).tolist()

        run_all = indices is not None and self._aligned_forward()

        def run(layer_idx: int, layer: LegoLayer, inputs: torch.Tensor):
            if indices is not None:
                return layer(
                    inputs, index=indices[layer_idx], run_all=run_all)
            return layer(inputs, weights=weights[layer_idx], hard=self.hard)

        layers = list(self.lego.values())
        start = 0
        if self.lego_stem:
            x = run(0, layers[0], x)
            start = 1
        else:
            x = self.stem(x)
        x = self.maxpool(x)
        outs = []
        for idx in range(start, len(layers)):
            x = run(idx, layers[idx], x)
            if idx in self._stage_ends:
                stage = self._stage_ends.index(idx)
                if stage in self.out_indices:
                    outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'LegoResNet':
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
