"""GPPF's task-level dynamic ResNet: lego layers with per-task controllers."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.backbones.resnet import ResNet
from mmdet.models.layers import ResLayer
from torch.nn.modules.batchnorm import _BatchNorm

from glid_mm.models.backbones.gppf_lego_base import BaseLegoBackbone
from glid_mm.models.converters.gppf_path_export import (
    lego_to_resnet_state_dict, resnet_to_lego_state_dict)
from glid_mm.models.layers.gppf_lego_layer import LegoLayer, LegoStem
from glid_mm.registry import MODELS


@MODELS.register_module()  # every toolbox: a backbone
class LegoResNet(BaseLegoBackbone):
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

    The task-dynamic part (controllers, sampling, temperature, task
    context, fixed paths, ``path``, ``selection_probs``, aligned forward) is
    :class:`BaseLegoBackbone`'s, shared with :class:`LegoSwinTransformer`.

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
        temperature (float): Initial Gumbel-Softmax temperature ``tau``;
            :class:`GumbelTemperatureHook` replaces it in training (a
            warning says so when they differ).
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
        with_cp (bool): Gradient checkpointing of each residual-block unit
            (GPPF App. D.1), done by :class:`LegoLayer` so that the
            recomputation reuses the forward pass's
            :class:`CrossTaskSyncBN` statistics (mmdet's block-level
            ``with_cp`` would all-reduce them again in the backward pass,
            pairing different units across processes), and plain ``BN``
            layers update their running statistics once, not twice as
            under mmdet's ``with_cp``. Defaults to False.
        zero_init_residual (bool): Zero-init the last BN of each block.
            Defaults to True.
        frozen_stages (int): Stages whose every unit is frozen (parameters
            without gradient, BN in eval mode): -1 none, 0 the stem, ``i``
            the stem and stages 1..i, as mmdet's ResNet. Defaults to -1.
        pretrained (str, optional): A plain ResNet checkpoint (torchvision,
            mmdet, mmseg or mmpretrain keys; a path or a URL such as
            ``'torchvision://resnet50'``) loaded into *every* unit by
            :meth:`init_weights` (each unit starts from the same weights;
            controllers stay uniform). This is what mmseg passes as
            ``model.pretrained``. A checkpoint whose backbone keys do not
            fit (a deep-stem ``resnet50_v1c``, another depth) is refused
            naming the keys. Defaults to None.
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
                 frozen_stages: int = -1,
                 pretrained: Optional[str] = None,
                 init_cfg=None) -> None:
        if pretrained is not None and not isinstance(pretrained, str):
            raise TypeError(f'LegoResNet.pretrained must be a checkpoint '
                            f'path or URL, got {pretrained!r}')
        if init_cfg is None:
            # BN already starts at weight 1, bias 0 (and the zero-init of
            # the residual BN below must survive init_weights)
            init_cfg = [dict(type='Kaiming', layer='Conv2d')]
        super().__init__(task_names, num_units, default_task, temperature,
                         hard, init_cfg)
        if depth not in ResNet.arch_settings:
            raise KeyError(f'LegoResNet.depth={depth!r} is not one of '
                           f'{sorted(ResNet.arch_settings)}')
        if not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be in 1..4, got {num_stages}')
        if len(strides) < num_stages or len(dilations) < num_stages:
            raise ValueError('strides and dilations need one entry per stage')
        if not out_indices or max(out_indices) >= num_stages or min(
                out_indices) < 0:
            raise ValueError(f'out_indices {out_indices} must lie in '
                             f'0..{num_stages - 1}')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in -1..{num_stages}, '
                             f'got {frozen_stages}')
        self.lego_stem = lego_stem
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        self.pretrained = pretrained
        self.depth = depth

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
                    with_cp=False,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg) for _ in range(num_units)
            ]
            for j in range(num_blocks):
                self.lego[f'layer{i + 1}_{j}'] = LegoLayer(
                    [replica[j] for replica in replicas], with_cp=with_cp)
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

        self._init_controllers(fixed_paths)
        self._freeze()

    def _freeze(self) -> None:
        for module in self._frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)

    def _path_state_dict(self, path: Sequence[int]) -> dict:
        """A plain mmdet/mmseg ``ResNet`` state dict of ``path``.

        Used by :meth:`static_state_dict` (give ``task`` or ``path``).
        """
        return lego_to_resnet_state_dict(self.state_dict(), path=path)

    # ---------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``x: [B, C, H, W]`` -> tuple of stage outputs (``out_indices``)."""
        run = self._lego_runner()
        start = 0
        if self.lego_stem:
            x = run(0, x)
            start = 1
        else:
            x = self.stem(x)
        x = self.maxpool(x)
        outs = []
        for idx in range(start, self.num_layers):
            x = run(idx, x)
            if idx in self._stage_ends:
                stage = self._stage_ends.index(idx)
                if stage in self.out_indices:
                    outs.append(x)
        return tuple(outs)

    def _frozen_modules(self) -> List[nn.Module]:
        """Stem and the lego layers of stages ``1..frozen_stages``."""
        if self.frozen_stages < 0:
            return []
        mods = [self.lego['stem'] if self.lego_stem else self.stem]
        for name, layer in self.lego.items():
            if name != 'stem' and int(
                    name[len('layer'):].split('_')[0]) <= self.frozen_stages:
                mods.append(layer)
        return mods

    def init_weights(self) -> None:
        """``init_cfg``, then ``pretrained`` (a plain ResNet) into every
        unit, then the frozen stages' parameters lose their gradient."""
        super().init_weights()
        if self.pretrained is not None:
            from mmengine.runner.checkpoint import CheckpointLoader
            ckpt = CheckpointLoader.load_checkpoint(
                self.pretrained, map_location='cpu')
            state = ckpt.get('state_dict', ckpt)
            own = self.state_dict()
            lego = resnet_to_lego_state_dict(state, list(own))
            wanted = [
                k for k in own if not k.startswith('controllers.')
                and not k.endswith('num_batches_tracked')
            ]
            missing = [k for k in wanted if k not in lego]
            bad = [k for k in lego if lego[k].shape != own[k].shape]
            if missing or bad:
                raise ValueError(
                    f'LegoResNet.pretrained={self.pretrained!r} does not fit '
                    f'(a plain ResNet-{self.depth} with a 7x7 stem, e.g. '
                    f"'torchvision://resnet{self.depth}', is needed; deep-"
                    f'stem v1c checkpoints are not): {len(missing)} unit '
                    f'tensors missing (e.g. {missing[:3]}), {len(bad)} of '
                    f'another shape (e.g. {bad[:3]})')
            self.load_state_dict(lego, strict=False)
        self._freeze()

    def train(self, mode: bool = True) -> 'LegoResNet':
        super().train(mode)
        frozen = self._frozen_modules()
        for module in frozen:
            module.eval()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
