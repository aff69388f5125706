"""Parameters and FLOPs of every ``configs/glid`` config, per part, next
to the paper's numbers.

Parts: ``encoder`` (backbone), ``fpn`` (neck: GLID's Bi-FPN), ``decoder``
(the query decoder), ``head`` (every top-level module whose name contains
``head``: the task's linear head, mmdet's fusion head, ...), ``other``
(what no part holds: query embeddings outside the decoder, glue).

FLOPs: :func:`glid_tools.benchmark.flops.count_flops` (mmengine's
FlopAnalyzer, **one multiply-add = one FLOP**) on one random image at the
config's size: fine-tuning models in ``mode='tensor'`` (backbone to head,
no post-processing, eval mode), pre-training models through the loss with
the config's own mask (encoder on the masked image, decoder on ``[CLS] +
N`` mask queries). The size comes from the config name (``-640x640`` is
read ``H x W``, ``-192px`` square); COCO detection configs without one use
800x1333 (mmdet's test scale; padded to a multiple of 32 by the
preprocessor). ``img_size=`` replaces every size (for quick runs).

Paper numbers: supp. Table 2 (Bi-FPN 33.8 GFLOPs / 5.0 M params, an
MSDeformAttn FPN 55.3 GFLOPs / 5.5 M; GLID Swin-B on ADE20K at 640x640)
and supp. Table 3 (head parameters per task). mmdet's Mask2Former Swin-B
at the same size is measured as the MSDeformAttn reference (its pixel
decoder in the ``fpn`` part).
"""
import copy
import fnmatch
import glob
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from glid_tools.benchmark.environment import collect_environment
from glid_tools.benchmark.flops import (count_flops, param_counts,
                                        unsupported_note)
from glid_tools.benchmark.inference import det_batch
from glid_tools.benchmark.models import (PROJECT_ROOT, BenchModel, build_model,
                                         load_config, mask2former)
from glid_tools.benchmark.pretrain_step import pretrain_batch, total_loss
from glid_tools.benchmark.report import make_result, run_row
from glid_tools.progress import Progress

# supp. Table 3 (head parameters, M) by config task prefix
PAPER_HEAD_PARAMS_M = {
    'pose': 0.6,
    'det': 0.5,
    'semseg': 0.9,
    'insseg': 0.6,
    'panseg': 0.9,
    'depth': 1.3,
}
PAPER_FPN = dict(bifpn=(33.8, 5.0), msdeformattn=(55.3, 5.5))  # G, M

COLUMNS = (
    ('config', 'config', ''),
    ('task', 'task', ''),
    ('input', 'input (HxW)', ''),
    ('params_m', 'params (M)', '.1f'),
    ('params_encoder_m', 'encoder (M)', '.1f'),
    ('params_fpn_m', 'FPN (M)', '.2f'),
    ('params_decoder_m', 'decoder (M)', '.2f'),
    ('params_head_m', 'head (M)', '.3f'),
    ('params_head_mlp3_m', 'head, mlp_layers=3 (M)', '.3f'),
    ('gflops', 'GFLOPs', '.4g'),
    ('gflops_encoder', 'GFLOPs encoder', '.4g'),
    ('gflops_fpn', 'GFLOPs FPN', '.4g'),
    ('gflops_decoder', 'GFLOPs decoder', '.4g'),
    ('gflops_head', 'GFLOPs head', '.4g'),
    ('paper', 'paper (supp.)', ''),
    ('note', 'note', ''),
)
PARTS = ('encoder', 'fpn', 'decoder', 'head')

#: fine-tuning tasks by config prefix (``glid-<task>_*``); other
#: ``glid-<tag>_*`` names are pre-training ablations (``glid-dec3_*``)
FINETUNE_TASKS = ('det', 'insseg', 'panseg', 'mtseg', 'semseg', 'depth',
                  'pose')


def config_task(path: str) -> str:
    """``'pretrain'``, or the fine-tuning task of a ``glid-<task>_*``
    config name."""
    name = osp.basename(path)
    match = re.match(r'glid-([a-z0-9]+)_', name)
    if match and match.group(1) in FINETUNE_TASKS:
        return match.group(1)
    return 'pretrain'


def config_input_size(path: str, scope: str) -> Tuple[int, int]:
    """``(H, W)`` from the config name (see the module docstring)."""
    name = osp.splitext(osp.basename(path))[0]
    match = re.search(r'-(\d+)x(\d+)$', name)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = re.search(r'-(\d+)px$', name)
    if match:
        return int(match.group(1)), int(match.group(1))
    if scope == 'mmdet':
        return 800, 1333
    raise ValueError(f'no input size in the name of {path}; pass img_size')


def model_parts(model: torch.nn.Module) -> Dict[str, Tuple[str, ...]]:
    """The parts of a GLID model (see the module docstring)."""
    names = [n for n, _ in model.named_children() if n != 'data_preprocessor']
    parts = dict(
        encoder=tuple(n for n in names if n == 'backbone'),
        fpn=tuple(n for n in names if n == 'neck'),
        decoder=tuple(n for n in names if n == 'decoder'),
        head=tuple(n for n in names if 'head' in n))
    return {k: v for k, v in parts.items() if v}


def _samples(scope: str, batch: int, hw: Tuple[int, int]) -> List:
    H, W = hw
    meta = dict(
        ori_shape=(H, W),
        img_shape=(H, W),
        pad_shape=(H, W),
        scale_factor=(1.0, 1.0),
        flip=False,
        flip_direction=None)
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        return [SegDataSample(metainfo=meta) for _ in range(batch)]
    if scope == 'mmpose':
        from mmpose.structures import PoseDataSample
        meta.update(
            input_size=(W, H),
            input_center=np.array([W / 2, H / 2]),
            input_scale=np.array([W, H], dtype=np.float32))
        return [PoseDataSample(metainfo=meta) for _ in range(batch)]
    return det_batch(batch, hw, 'cpu')['data_samples']


def _forward_inputs(cfg, model, scope: str, hw: Tuple[int, int],
                    device: torch.device):
    """``(fn, inputs)`` for count_flops at size ``hw`` (one image)."""
    if scope == 'mmpretrain':
        if hw[0] != hw[1]:
            raise ValueError(f'pre-training input must be square, got {hw}')
        data = pretrain_batch(cfg, 1, hw[0], device)
        data = model.data_preprocessor(data, True)
        samples = data['data_samples']
        return (lambda m, x: total_loss(m.loss(x, samples)), data['inputs'])
    rng = np.random.default_rng(0)
    img = torch.from_numpy(
        rng.integers(0, 256, (3, ) + tuple(hw), dtype=np.uint8)).to(device)
    data = model.data_preprocessor(
        dict(inputs=[img], data_samples=_samples(scope, 1, hw)), False)
    samples = data['data_samples']
    return (lambda m, x: m(x, samples, mode='tensor'), data['inputs'])


def _paper(task: str, arch: str) -> str:
    cells = []
    if arch == 'swin-b' and task in ('semseg', 'insseg', 'panseg', 'mtseg'):
        g, m = PAPER_FPN['bifpn']
        cells.append(f'BiFPN {g} G / {m} M (Tab. 2)')
    if task in PAPER_HEAD_PARAMS_M and arch != 'swin-nano':
        cells.append(f'head {PAPER_HEAD_PARAMS_M[task]} M (Tab. 3)')
    return '; '.join(cells)


def _head_keys(model_cfg) -> List[str]:
    """Keys of ``model_cfg`` holding a GLID task head config."""
    return [
        k for k, v in model_cfg.items() if 'head' in k and isinstance(v, dict)
        and str(v.get('type', '')).split('.')[-1].startswith('GLID')
    ]


def head_mlp_params(cfg,
                    device: torch.device,
                    mlp_layers: int = 3) -> Optional[int]:
    """Head parameters with the heads' ``mlp_layers`` option (Mask2Former /
    DETR / BinsFormer-shaped MLP tops), for supp. Table 3; None for models
    without a GLID task head."""
    cfg = copy.deepcopy(cfg)
    keys = _head_keys(cfg.model)
    if not keys or cfg.model.get('type') == 'GLID':  # pre-training head
        return None
    for key in keys:
        cfg.model[key]['mlp_layers'] = mlp_layers
    model = build_model(cfg, device)
    parts = model_parts(model)
    return param_counts(model, parts).get('head')


def measure_config(path: str,
                   device: torch.device,
                   img_size: Optional[Sequence[int]] = None,
                   spec: Optional[BenchModel] = None,
                   arch: str = 'base') -> dict:
    """Parameters and FLOPs per part of one config (or peer ``spec``)."""
    cfg = load_config(path, spec.options.get(arch) if spec else None)
    scope = cfg.get('default_scope', 'mmengine')
    hw = tuple(img_size) if img_size else config_input_size(path, scope)
    model = build_model(cfg, device)
    if scope == 'mmpretrain':
        model.train()  # the pre-training forward (drop path off by config)
    else:
        model.eval()
    parts = dict(spec.parts) if spec else model_parts(model)
    params = param_counts(model, parts)
    fn, inputs = _forward_inputs(cfg, model, scope, hw, device)
    flops = count_flops(model, fn, (inputs, ), parts)
    row = dict(
        input=f'{hw[0]}x{hw[1]}',
        params_m=params['total'] / 1e6,
        gflops=flops['total'] / 1e9,
        params_other_m=params.get('other', 0) / 1e6,
        gflops_other=flops['parts'].get('other', 0) / 1e9,
        note=unsupported_note(flops['unsupported']))
    for part in PARTS:
        if part in parts:
            row[f'params_{part}_m'] = params[part] / 1e6
            row[f'gflops_{part}'] = flops['parts'][part] / 1e9
    if spec is None:
        mlp = head_mlp_params(cfg, device)
        if mlp is not None:
            row['params_head_mlp3_m'] = mlp / 1e6
    return row


def find_configs(pattern: str = '*') -> List[str]:
    """``configs/glid/*.py`` (relative to the project) matching the glob
    ``pattern`` on the file name."""
    files = sorted(
        glob.glob(osp.join(PROJECT_ROOT, 'configs', 'glid', '*.py')))
    return [
        osp.relpath(f, PROJECT_ROOT) for f in files
        if fnmatch.fnmatch(osp.basename(f), pattern)
    ]


def benchmark_complexity(pattern: str = '*',
                         img_size: Optional[Sequence[int]] = None,
                         with_peers: bool = True,
                         device: str = 'cpu',
                         progress: bool = True) -> dict:
    """One row per matching ``configs/glid`` config (+ Mask2Former Swin-B
    as the MSDeformAttn reference); see the module docstring. ``progress``
    shows a progress bar with elapsed time and ETA over the configs
    (mmengine's ``ProgressBar``)."""
    dev = torch.device(device)
    configs = find_configs(pattern)
    if not configs:
        raise FileNotFoundError(f'no configs/glid/*.py matches {pattern!r}')
    rows = []
    bar = Progress(len(configs) + bool(with_peers), enabled=progress)
    for path in configs:
        task = config_task(path)
        arch = re.search(r'_(swin-[a-z]+)', osp.basename(path))
        arch = arch.group(1) if arch else ''
        base = dict(
            config=osp.basename(path),
            role='glid_mm',
            task=task,
            paper=_paper(task, arch))
        rows.append(run_row(base, lambda: measure_config(path, dev, img_size)))
        bar.update()
    if with_peers:
        spec = mask2former(100, 50)
        path = spec.config('base')
        base = dict(
            config=path.split('/')[-1],
            role='peer',
            task='panseg (Mask2Former, FPN = MSDeformAttn pixel decoder)',
            paper='MSDeformAttn {} G / {} M (Tab. 2)'.format(
                *PAPER_FPN['msdeformattn']))
        size = img_size or (640, 640)
        rows.append(
            run_row(base,
                    lambda: measure_config(path, dev, size, spec, 'base')))
        bar.update()
    bar.close()
    return make_result(
        name='model_complexity',
        title='Parameters and FLOPs of configs/glid, per part',
        description='Parameters and forward FLOPs (FlopAnalyzer, 1 '
        'multiply-add = 1 FLOP) of each config at its input size, split '
        'into encoder / FPN (Bi-FPN) / decoder / head, next to supp. '
        'Tables 2-3.',
        environment=collect_environment(dev),
        settings=dict(
            configs=pattern,
            img_size='from config names'
            if not img_size else f'{img_size[0]}x{img_size[1]}',
            device=device),
        columns=COLUMNS,
        rows=rows,
        notes=[
            'FLOPs of one image; fine-tuning models in mode=tensor (no '
            'post-processing), pre-training models through the loss with '
            'the config\'s mask',
            'parts: encoder = backbone, FPN = neck (Bi-FPN; for '
            'Mask2Former its MSDeformAttn pixel decoder), decoder = query '
            'decoder, head = top-level *head* modules; other (in the JSON) '
            '= the rest',
            'supp. Table 2: BiFPN 33.8 GFLOPs / 5.0 M, MSDeformAttn 55.3 '
            'GFLOPs / 5.5 M (GLID Swin-B, ADE20K 640x640); supp. Table 3: '
            'head params pose 0.6 M, det 0.5 M, semseg 0.9 M, insseg 0.6 '
            'M, panseg 0.9 M, depth 1.3 M',
            'head, mlp_layers=3: the heads\' MLP option (Mask2Former mask '
            'embedding, DETR box FFN, BinsFormer bin heads at the decoder '
            'width): within 10% of Table 3 for depth and pose, not for '
            'det (+14%) and segmentation (-18% semantic / panoptic, +18% '
            'instance), whose Table 3 sizes no head of this family gives '
            '(instance 0.6 M vs panoptic 0.9 M differ by far more than '
            'their class layers)',
        ])
