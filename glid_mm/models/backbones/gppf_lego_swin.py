"""GPPF's task-level dynamic Swin Transformer (GPPF-SwinT, Sec. 4.2)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import PatchEmbed, PatchMerging
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.swin_transformer import (SwinBlock,
                                                          SwinTransformer)

from glid_mm.models.backbones.gppf_lego_base import BaseLegoBackbone
from glid_mm.models.converters.gppf_path_export import lego_to_swin_state_dict
from glid_mm.models.layers.gppf_lego_layer import LegoLayer
from glid_mm.registry import MODELS


class _PatchEmbedUnit(PatchEmbed):
    """mmcv ``PatchEmbed`` returning a map: ``[B, C_in, H, W]`` ->
    ``[B, H/p, W/p, C]`` (same parameters and state-dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, (h, w) = super().forward(x)
        return tokens.view(tokens.shape[0], h, w, tokens.shape[-1])


class _SwinBlockUnit(SwinBlock):
    """mmpretrain ``SwinBlock`` on maps: ``[B, H, W, C]`` -> same shape.

    The window layout needs ``(H, W)``, which ``SwinBlock.forward`` takes as
    a second argument; carrying it in the tensor's shape lets
    :class:`LegoLayer` mix blocks like any other unit. Parameters and
    state-dict keys are ``SwinBlock``'s.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # mmpretrain draws the relative position bias table in
        # ``WindowMSA.init_weights``, which ``init_weights`` does not reach
        # through LegoLayer's plain ``nn.ModuleList``; draw it here (a
        # 'Pretrained' init_cfg still overwrites it)
        trunc_normal_(self.attn.w_msa.relative_position_bias_table, std=.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        return super().forward(x.reshape(b, h * w, c), (h, w)).view(b, h, w, c)


class _PatchMergingUnit(PatchMerging):
    """mmcv ``PatchMerging`` on maps: ``[B, H, W, C]`` ->
    ``[B, H/2, W/2, C']`` (same parameters and state-dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        tokens, (oh, ow) = super().forward(x.reshape(b, h * w, c), (h, w))
        return tokens.view(b, oh, ow, tokens.shape[-1])


@MODELS.register_module()  # every toolbox: a backbone
class LegoSwinTransformer(BaseLegoBackbone):
    """Swin Transformer whose every block (and patch embedding) is a lego
    layer of ``N`` units: GPPF-SwinT.

    GPPF Sec. 3.2 (Fig. 2a) applied to Swin-T (Sec. 4.2, "Adaptation
    Ability to SOTA Transformer"; Table 1, N = 2): lego layer ``l`` holds
    ``N`` copies of one Swin block (mmpretrain's ``SwinBlock``, as in
    ``SwinTransformer.stages[i].blocks[j]``; odd blocks use shifted
    windows) with separate weights. Task controllers, Gumbel-Softmax mixing
    (eq. 1, soft or ``hard`` straight-through), the argmax unit at
    evaluation, fixed paths (Sec. 3.3), the task context and SIMT handling
    are :class:`BaseLegoBackbone`'s, the same as :class:`LegoResNet`'s.

    What is lego'd: the Swin blocks, and by default the patch embedding
    (``lego_stem=True``): App. B reports that all tasks come to share the
    input layer "in the N = 3 case and Swin-Transformer case" too, so it
    was selectable there. The paper does not say whether the patch merging
    layers were; they are shared by default (``lego_downsample=False``,
    the lego units being transformer blocks) and selectable with
    ``lego_downsample=True``. The output norms are shared. Swin uses
    LayerNorm, so no cross-task normalisation is involved (Sec. 4.2).

    Lego layers, in forward order (:attr:`layer_names`): ``'stem'`` (patch
    embedding), ``'stage{i}_{j}'`` (block ``j`` of stage ``i``, 0-based as
    in ``stages.i.blocks.j``) and, with ``lego_downsample``,
    ``'stage{i}_down'`` after the blocks of stage ``i`` (``i < S - 1``).
    Swin-T with the lego stem has ``L = 13`` layers.

    :meth:`static_state_dict` returns one path as a state dict of
    mmpretrain's plain ``SwinTransformer`` of the same ``arch`` and
    ``out_indices`` (see :func:`lego_to_swin_state_dict`).

    Args:
        task_names (Sequence[str]): Tasks with a controller (identifiers).
        arch (str or dict): A preset of mmpretrain's
            ``SwinTransformer.arch_zoo`` (``'tiny'``, ``'small'``,
            ``'base'``, ``'large'``) or a dict with ``embed_dims``,
            ``depths`` and ``num_heads``. Defaults to 'tiny'.
        num_units (int): Units per lego layer ``N``. Defaults to 2
            (Table 1).
        lego_stem (bool): Make the patch embedding a lego layer (App. B).
            Defaults to True.
        lego_downsample (bool): Make each patch merging a lego layer.
            Defaults to False (shared).
        default_task (str, optional): Task used when none is set.
            Defaults to None (the only task if there is one).
        temperature (float): Initial Gumbel-Softmax temperature ``tau``.
            Defaults to 5.0 (App. D.1).
        hard (bool): Straight-through hard samples instead of soft mixing.
            Defaults to False (Sec. 3.2).
        fixed_paths (dict[str, Sequence[int]], optional): Per task, one
            unit index per lego layer. Defaults to None.
        patch_size (int): Patch embedding size and stride. Defaults to 4.
        in_channels (int): Input channels. Defaults to 3.
        window_size (int): Attention window size. Defaults to 7.
        drop_rate (float): Dropout after the patch embedding. Defaults to 0.
        drop_path_rate (float): Stochastic depth, rising linearly over the
            blocks (all units of a layer share it). Defaults to 0.1.
        out_indices (Sequence[int]): Stages whose normalised output is
            returned. Defaults to ``(0, 1, 2, 3)``.
        pad_small_map (bool): As mmpretrain's ``SwinTransformer``: pad maps
            smaller than the window instead of shrinking the window.
            Defaults to False.
        with_cp (bool): Gradient checkpointing inside blocks. Defaults to
            False.
        norm_cfg (dict): Norm of each output. Defaults to
            ``dict(type='LN')``.
        init_cfg (dict or list[dict], optional): Defaults to truncated
            normal (std 0.02) Linear weights with zero bias and LayerNorm
            weight 1, bias 0 (the Swin initialisation).
        pretrained (str, optional): Accepted because mmseg passes
            ``model.pretrained`` to backbones, and refused when set, with
            what to write instead (a plain Swin checkpoint does not match
            the lego units). Defaults to None.

    Shapes: ``x: [B, in_channels, H, W]`` -> tuple of
    ``[B, embed_dims * 2**i, H / (patch_size * 2**i),
    W / (patch_size * 2**i)]`` for ``i`` in ``out_indices`` (sizes rounded
    up: the patch embedding and merging pad like mmpretrain's).
    """

    def __init__(self,
                 task_names: Sequence[str],
                 arch: Union[str, dict] = 'tiny',
                 num_units: int = 2,
                 lego_stem: bool = True,
                 lego_downsample: bool = False,
                 default_task: Optional[str] = None,
                 temperature: float = 5.0,
                 hard: bool = False,
                 fixed_paths: Optional[Dict[str, Sequence[int]]] = None,
                 patch_size: int = 4,
                 in_channels: int = 3,
                 window_size: int = 7,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 pad_small_map: bool = False,
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg=None,
                 pretrained: Optional[str] = None) -> None:
        if pretrained is not None:
            raise ValueError(
                f'LegoSwinTransformer does not load pretrained='
                f'{pretrained!r}: a plain Swin checkpoint does not match the '
                'lego units; start from a GPPF checkpoint with load_from (or '
                "init_cfg=dict(type='Pretrained', checkpoint=...) of a lego "
                'checkpoint) and set model.pretrained=None')
        if init_cfg is None:
            init_cfg = [
                dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
            ]
        super().__init__(task_names, num_units, default_task, temperature,
                         hard, init_cfg)
        settings = self._arch_settings(arch)
        self.embed_dims = settings['embed_dims']
        self.depths = tuple(settings['depths'])
        self.num_heads = tuple(settings['num_heads'])
        num_stages = len(self.depths)
        if len(self.num_heads) != num_stages or min(self.depths) < 1:
            raise ValueError(f'arch needs one positive depth and one head '
                             f'count per stage, got {settings}')
        if not out_indices or max(out_indices) >= num_stages or min(
                out_indices) < 0:
            raise ValueError(f'out_indices {out_indices} must lie in '
                             f'0..{num_stages - 1}')
        self.lego_stem = lego_stem
        self.lego_downsample = lego_downsample
        self.out_indices = tuple(out_indices)

        def patch_embed():
            return _PatchEmbedUnit(
                in_channels=in_channels,
                embed_dims=self.embed_dims,
                conv_type='Conv2d',
                kernel_size=patch_size,
                stride=patch_size,
                norm_cfg=dict(type='LN'))

        self.lego = nn.ModuleDict()
        if lego_stem:
            self.lego['stem'] = LegoLayer(
                [patch_embed() for _ in range(num_units)])
        else:
            self.patch_embed = patch_embed()
        self.drop_after_pos = nn.Dropout(p=drop_rate)

        drop_paths = torch.linspace(0, drop_path_rate,
                                    sum(self.depths)).tolist()
        # one step per stage: (lego layer indices of its blocks,
        # lego index of its patch merging or None)
        self._stage_layers: List[Tuple[List[int], Optional[int]]] = []
        self.downsamples = nn.ModuleList()
        dims = [self.embed_dims * 2**i for i in range(num_stages)]
        block = 0
        for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            blocks = []
            for j in range(depth):
                self.lego[f'stage{i}_{j}'] = LegoLayer([
                    _SwinBlockUnit(
                        embed_dims=dims[i],
                        num_heads=heads,
                        window_size=window_size,
                        shift=j % 2 == 1,
                        drop_path=drop_paths[block],
                        pad_small_map=pad_small_map,
                        with_cp=with_cp) for _ in range(num_units)
                ])
                blocks.append(len(self.lego) - 1)
                block += 1
            down = None
            if i < num_stages - 1:
                mergings = [
                    _PatchMergingUnit(
                        in_channels=dims[i],
                        out_channels=2 * dims[i],
                        norm_cfg=dict(type='LN'))
                    for _ in range(num_units if lego_downsample else 1)
                ]
                if lego_downsample:
                    self.lego[f'stage{i}_down'] = LegoLayer(mergings)
                    down = len(self.lego) - 1
                else:
                    self.downsamples.append(mergings[0])
            self._stage_layers.append((blocks, down))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, dims[i])[1])
        self.out_channels = tuple(dims[i] for i in self.out_indices)

        self._init_controllers(fixed_paths)

    @staticmethod
    def _arch_settings(arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch.lower() not in SwinTransformer.arch_zoo:
                raise KeyError(f'LegoSwinTransformer.arch={arch!r} is not one '
                               f'of {sorted(SwinTransformer.arch_zoo)}')
            return SwinTransformer.arch_zoo[arch.lower()]
        keys = {'embed_dims', 'depths', 'num_heads'}
        if not isinstance(arch, dict) or set(arch) != keys:
            raise ValueError(f'a custom arch is a dict with keys '
                             f'{sorted(keys)}, got {arch!r}')
        return arch

    def _path_state_dict(self, path: Sequence[int]) -> dict:
        """mmpretrain ``SwinTransformer`` state dict of ``path``.

        Used by :meth:`static_state_dict` (give ``task`` or ``path``).
        """
        return lego_to_swin_state_dict(self.state_dict(), path=path)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``x: [B, C, H, W]`` -> tuple of ``[B, C_i, H_i, W_i]`` stage
        outputs (``out_indices``), each after its ``norm{i}``."""
        run = self._lego_runner()
        # maps are kept channels-last, [B, H_i, W_i, C_i], between layers
        x = run(0, x) if self.lego_stem else self.patch_embed(x)
        x = self.drop_after_pos(x)
        outs = []
        for i, (blocks, down) in enumerate(self._stage_layers):
            for idx in blocks:
                x = run(idx, x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
            if down is not None:
                x = run(down, x)
            elif i < len(self._stage_layers) - 1:
                x = self.downsamples[i](x)
        return tuple(outs)
