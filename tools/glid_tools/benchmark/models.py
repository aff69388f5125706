"""The models the benchmarks compare, built from their configs.

Ours come from ``configs/glid/``; the peers from the installed toolboxes'
own configs (``mmpretrain::`` / ``mmdet::``), so a row measures what a
user of that config runs. Two sizes (``arch``):

- ``'base'``: the paper's Swin-B models and the peers' Swin-B configs (the
  paper-scale settings; for GPUs).
- ``'nano'``: our nano configs (4-stage Swin of width 32, one block per
  stage; 1-block BiFPN of width 32; 3-block decoder of width 64) and the
  peers' configs shrunk to the same encoder with ``options`` (the same
  override mechanism as ``--cfg-options``); for CPU smoke runs only.

Peers whose stock config has no Swin-B (DINO ships Swin-L, DETR a ResNet)
get mmdet's own Swin-B in their config by ``options``, so the encoders
compare; each spec's ``note`` says what was changed. Weights are random
(``init_cfg`` is never run): speed and memory do not depend on them,
except for the amount of post-processing (how many segments survive the
score thresholds).

Parts (for per-part FLOPs / parameters): ``encoder`` (backbone), ``fpn``
(GLID's Bi-FPN; Mask2Former's MSDeformAttn pixel decoder; DETR/DINO's
neck + transformer encoder), ``decoder`` (the query decoder) and ``head``.
"""
import importlib
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

PROJECT_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
ARCHS = ('nano', 'base')

# the nano encoder of configs/glid/*nano*: Swin width 32, 1 block per stage
_NANO_SWIN_MMDET = dict(
    embed_dims=32,
    depths=[1, 1, 1, 1],
    num_heads=[1, 2, 4, 8],
    window_size=2,
    with_cp=False,
    init_cfg=None)
_NANO_CHANNELS = [32, 64, 128, 256]
# mmdet's SwinTransformer as Swin-B (the layout of mask2former_swin-b-*)
_SWIN_B_MMDET = dict(
    _delete_=True,
    type='SwinTransformer',
    embed_dims=128,
    depths=[2, 2, 18, 2],
    num_heads=[4, 8, 16, 32],
    window_size=12,
    mlp_ratio=4,
    qkv_bias=True,
    drop_path_rate=0.3,
    patch_norm=True,
    convert_weights=True,
    init_cfg=None)
_SWIN_B_CHANNELS = [128, 256, 512, 1024]


def _mha(dims: int, heads: int) -> dict:
    return dict(embed_dims=dims, num_heads=heads)


def _ffn(dims: int, hidden: int) -> dict:
    return dict(embed_dims=dims, feedforward_channels=hidden)


@dataclass(frozen=True)
class BenchModel:
    """One model of a comparison.

    Attributes:
        name: Row name, e.g. ``'GLID'``, ``'Mask2Former'``.
        role: ``'glid_mm'`` (ours) or ``'peer'``.
        configs: ``arch -> config`` (a path relative to the project root or
            ``'<toolbox>::<path>'``).
        options: ``arch -> options`` merged into the config (nested dicts,
            as ``Config.merge_from_dict``).
        parts: ``part -> module names`` for per-part FLOPs / parameters.
        note: What differs from the stock config (every arch).
        nano_note: What ``'nano'`` changes on top.
    """
    name: str
    role: str
    configs: Dict[str, str]
    options: Dict[str, dict] = field(default_factory=dict)
    parts: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    note: str = ''
    nano_note: str = ''

    def config(self, arch: str) -> str:
        if arch not in self.configs:
            raise KeyError(f'{self.name} has no {arch!r} config (known: '
                           f'{sorted(self.configs)})')
        return self.configs[arch]


def resolve_config(path: str) -> str:
    """Absolute file of ``path``: ``'<toolbox>::rel'`` resolves into the
    installed toolbox's ``.mim/configs``; other paths relative to the
    project root (or absolute)."""
    if '::' in path:
        package, rel = path.split('::', 1)
        try:
            module = importlib.import_module(package)
        except ImportError as e:
            raise FileNotFoundError(
                f'{path}: toolbox {package!r} is not installed') from e
        file = osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel)
    else:
        file = path if osp.isabs(path) else osp.join(PROJECT_ROOT, path)
    if not osp.isfile(file):
        raise FileNotFoundError(f'config {path} not found ({file})')
    return file


def load_config(path: str, options: Optional[dict] = None) -> Config:
    """Read a config and merge ``options`` into it."""
    cfg = Config.fromfile(resolve_config(path))
    if options:
        cfg.merge_from_dict(options)
    return cfg


def build_model(cfg: Config, device: torch.device) -> nn.Module:
    """Build ``cfg.model`` in the config's toolbox scope (random weights).

    ``init_weights`` is not called: no pretrained checkpoint is fetched.
    """
    import glid_mm  # noqa: F401,F811  (registers our components)
    scope = cfg.get('default_scope', None) or 'mmengine'
    init_default_scope(scope)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    return registry.build(cfg.model).to(device)


# ------------------------------------------------------------ pre-training
GLID_PRETRAIN = BenchModel(
    name='GLID',
    role='glid_mm',
    configs=dict(
        base='configs/glid/glid_swin-b_16xb128-coslr-300e_in1k-192px.py',
        nano='configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'),
    parts=dict(
        encoder=('backbone', ),
        fpn=('neck', ),
        decoder=('decoder', ),
        head=('head', )))

GLID_PRETRAIN_MASKTOKEN = BenchModel(
    name='GLID mask-token',
    role='glid_mm',
    configs=dict(
        base='configs/glid/glid-masktoken_swin-b_16xb128-coslr-300e_in1k-'
        '192px.py',
        nano='configs/glid/glid-masktoken_swin-nano_1xb16-300i_bundled-'
        '128px.py'),
    parts=GLID_PRETRAIN.parts,
    note='ablation: SimMIM-style mask-token encoder on the full grid')

SIMMIM = BenchModel(
    name='SimMIM',
    role='peer',
    configs=dict(
        base='mmpretrain::simmim/'
        'simmim_swin-base-w6_16xb128-amp-coslr-100e_in1k-192px.py',
        nano='mmpretrain::simmim/'
        'simmim_swin-base-w6_16xb128-amp-coslr-100e_in1k-192px.py'),
    options=dict(
        nano=dict(
            model=dict(
                backbone=dict(
                    arch=dict(
                        _delete_=True,
                        embed_dims=32,
                        depths=[1, 1, 1, 1],
                        num_heads=[1, 2, 4, 8]),
                    stage_cfgs=dict(block_cfgs=dict(window_size=2))),
                neck=dict(in_channels=256)))),
    parts=dict(encoder=('backbone', ), decoder=('neck', ), head=('head', )),
    note='stock config',
    nano_note='encoder shrunk to the nano Swin')

# --------------------------------------------- M3I pre-training
M3I_PRETRAIN = BenchModel(
    name='M3I',
    role='glid_mm',
    configs=dict(
        base='configs/m3i/m3i_vit-base-p16_64xb64-amp-coslr-400e_in1k.py',
        nano='configs/m3i/m3i_vit-tiny-p16_1xb8-200i_hymenoptera-coco128-'
        '64px.py'),
    parts=dict(
        encoder=('backbone', ),
        decoder=('neck', ),
        head=('head', ),
        momentum=('momentum_encoder', )))

MAE = BenchModel(
    name='MAE',
    role='peer',
    configs=dict(
        base='mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
        nano='mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'),
    options=dict(
        nano=dict(
            model=dict(
                backbone=dict(
                    arch=dict(
                        _delete_=True,
                        embed_dims=64,
                        num_layers=2,
                        num_heads=2,
                        feedforward_channels=128)),
                neck=dict(
                    num_patches=16,
                    embed_dim=64,
                    decoder_embed_dim=64,
                    decoder_depth=2,
                    decoder_num_heads=2)))),
    parts=dict(encoder=('backbone', ), decoder=('neck', ), head=('head', )),
    note='stock config',
    nano_note='shrunk to the M3I tiny encoder (64 wide, 2 layers, 64 px)')

# ------------------------------------------------------ panoptic inference
GLID_PANOPTIC = BenchModel(
    name='GLID',
    role='glid_mm',
    configs=dict(
        base='configs/glid/glid-panseg_swin-b_8xb2-160k_ade20k-640x640.py',
        nano='configs/glid/'
        'glid-panseg_swin-nano_1xb2-500i_coco-panoptic-samples-320x240.py'),
    parts=dict(
        encoder=('backbone', ),
        fpn=('neck', ),
        decoder=('decoder', ),
        head=('panoptic_head', 'panoptic_fusion_head')))


def _mask2former_options(things: int, stuff: int, nano: bool) -> dict:
    head = dict(
        num_things_classes=things,
        num_stuff_classes=stuff,
        loss_cls=dict(class_weight=[1.0] * (things + stuff) + [0.1]))
    model = dict(
        backbone=dict(init_cfg=None),
        panoptic_head=head,
        panoptic_fusion_head=dict(
            num_things_classes=things, num_stuff_classes=stuff),
        test_cfg=dict(panoptic_on=True, semantic_on=False, instance_on=False))
    if nano:
        model['backbone'].update(_NANO_SWIN_MMDET)
        enc_layer = dict(self_attn_cfg=_mha(32, 4), ffn_cfg=_ffn(32, 64))
        dec_layer = dict(
            self_attn_cfg=_mha(32, 4),
            cross_attn_cfg=_mha(32, 4),
            ffn_cfg=_ffn(32, 64))
        head.update(
            in_channels=_NANO_CHANNELS,
            feat_channels=32,
            out_channels=32,
            pixel_decoder=dict(
                encoder=dict(num_layers=1, layer_cfg=enc_layer),
                positional_encoding=dict(num_feats=16)),
            positional_encoding=dict(num_feats=16),
            transformer_decoder=dict(num_layers=3, layer_cfg=dec_layer))
    return dict(model=model)


def mask2former(things: int, stuff: int) -> BenchModel:
    """mmdet's Mask2Former Swin-B panoptic config with our class counts."""
    cfg = ('mmdet::mask2former/'
           'mask2former_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic.py')
    return BenchModel(
        name='Mask2Former',
        role='peer',
        configs=dict(base=cfg, nano=cfg),
        options=dict(
            base=_mask2former_options(things, stuff, False),
            nano=_mask2former_options(things, stuff, True)),
        parts=dict(
            encoder=('backbone', ),
            fpn=('panoptic_head.pixel_decoder', ),
            decoder=('panoptic_head.transformer_decoder', ),
            head=('panoptic_head', 'panoptic_fusion_head')),
        note=f'stock config with {things}+{stuff} classes, panoptic output '
        'only',
        nano_note='nano Swin; pixel decoder (1 layer) and decoder (3 '
        'layers) at width 32')


# ----------------------------------------------------- detection inference
GLID_DETECTION = BenchModel(
    name='GLID',
    role='glid_mm',
    configs=dict(
        base='configs/glid/glid-det_swin-b_8xb2-50e_coco.py',
        nano='configs/glid/glid-det_swin-nano_1xb8-2k_coco128-320x240.py'),
    parts=dict(
        encoder=('backbone', ),
        fpn=('neck', ),
        decoder=('decoder', ),
        head=('bbox_head', )))


def _detr_like_options(kind: str, nano: bool) -> dict:
    indices = (0, 1, 2, 3) if kind == 'dino' else (3, )
    channels = _NANO_CHANNELS if nano else _SWIN_B_CHANNELS
    backbone = dict(_SWIN_B_MMDET, out_indices=indices)
    if nano:
        backbone.update(_NANO_SWIN_MMDET)
    model = dict(
        backbone=backbone,
        neck=dict(in_channels=[channels[i] for i in indices]))
    if nano:
        # DINO's decoder hard-codes 128 sine features per box coordinate
        # (ref_point_head takes 2 x 256), so its width stays 256
        dims, heads, hidden = (256, 8, 256) if kind == 'dino' else (32, 4, 64)
        model['neck'].update(out_channels=dims)
        if kind == 'dino':
            enc = dict(self_attn_cfg=dict(embed_dims=dims, num_heads=heads))
            dec = dict(
                self_attn_cfg=_mha(dims, heads),
                cross_attn_cfg=dict(embed_dims=dims, num_heads=heads))
        else:
            enc = dict(self_attn_cfg=_mha(dims, heads))
            dec = dict(
                self_attn_cfg=_mha(dims, heads),
                cross_attn_cfg=_mha(dims, heads))
        enc['ffn_cfg'] = _ffn(dims, hidden)
        dec['ffn_cfg'] = _ffn(dims, hidden)
        model.update(
            encoder=dict(num_layers=1, layer_cfg=enc),
            decoder=dict(num_layers=3, layer_cfg=dec),
            positional_encoding=dict(num_feats=dims // 2),
            bbox_head=dict(embed_dims=dims))
    return dict(model=model)


def _detr_like(kind: str) -> BenchModel:
    if kind == 'dino':
        name, cfg = 'DINO', 'mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py'
        note = ('stock Swin-L 5-scale config with mmdet\'s Swin-B backbone '
                '(window 12), 900 queries')
    else:
        name, cfg = 'DETR', 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
        note = ('stock R-50 config with mmdet\'s Swin-B backbone (last '
                'stage, window 12), 100 queries')
    return BenchModel(
        name=name,
        role='peer',
        configs=dict(base=cfg, nano=cfg),
        options=dict(
            base=_detr_like_options(kind, False),
            nano=_detr_like_options(kind, True)),
        parts=dict(
            encoder=('backbone', ),
            fpn=('neck', 'encoder'),
            decoder=('decoder', ),
            head=('bbox_head', )),
        note=note,
        nano_note='nano Swin; 1 encoder and 3 decoder layers (width ' +
        ('256: DINO\'s decoder needs it)' if kind == 'dino' else '32)'))


DINO = _detr_like('dino')
DETR = _detr_like('detr')


def parse_peer_config(spec: str, role: str = 'peer') -> BenchModel:
    """A model from ``NAME=CONFIG`` (``--extra-peer``), used as is for
    every arch."""
    if '=' not in spec:
        raise ValueError(f'expected NAME=CONFIG, got {spec!r}')
    name, cfg = spec.split('=', 1)
    return BenchModel(
        name=name,
        role=role,
        configs={a: cfg
                 for a in ARCHS},
        note='user config')


def model_queries(model: nn.Module) -> Optional[int]:
    """Number of object queries of a detector (None if it has none)."""
    for owner in (model, getattr(model, 'bbox_head',
                                 None), getattr(model, 'panoptic_head', None)):
        value = getattr(owner, 'num_queries', None)
        if isinstance(value, int):
            return value
    return None


def model_note(spec: BenchModel, arch: str, extra: Sequence[str] = ()) -> str:
    """The table's note for ``spec`` at ``arch``."""
    nano = f'nano: {spec.nano_note}' if arch == 'nano' and \
        spec.nano_note else ''
    return '; '.join([s for s in (spec.note, nano, *extra) if s])
