"""GLID pre-training step vs mmpretrain's SimMIM.

One optimisation step exactly as mmengine's ``BaseModel.train_step`` runs
it under ``AmpOptimWrapper``: the data preprocessor (normalisation of the
uint8 batch, already on the device: data loading is not timed), the
forward pass to the loss (GLID: Swin-B encoder on the masked image ->
Bi-FPN -> query decoder on ``[CLS] + N`` mask queries -> linear pixel head
-> masked MSE, GLID Sec. 3.1 eq. 1-2; SimMIM: Swin-B with mask tokens ->
linear decoder -> L1), backward and the config's optimizer step (AdamW,
the config's ``paramwise_cfg`` and gradient clipping). bf16 is
``torch.autocast(dtype=torch.bfloat16)``, what ``AmpOptimWrapper(dtype=
'bfloat16')`` sets; both models run the same precision, batch and image
size. Masks come from each config's own mask generator
(``GLIDMaskGenerator``: 75 % of 32 px patches; ``SimMIMMaskGenerator``:
60 % of 32 px patches).

Model FLOPs utilisation (MFU): ``3 x forward FLOPs`` per step (backward
counted as twice the forward), with the forward counted by
:func:`glid_tools.benchmark.flops.count_flops` (fvcore convention, one
multiply-add = one FLOP) and converted to hardware FLOPs (x2), divided by
the step time and the GPU's dense bf16 peak
(:data:`glid_tools.benchmark.environment.DENSE_BF16_PEAK_TFLOPS`). Only for
bf16 on a known GPU; otherwise the column is empty.
"""
import logging
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

from glid_tools.benchmark.environment import (collect_environment,
                                              dense_bf16_peak_tflops)
from glid_tools.benchmark.flops import (count_flops, param_counts,
                                        unsupported_note)
from glid_tools.benchmark.measure import (CPU_MEMORY_NOTE, CUDA_MEMORY_NOTE,
                                          autocast, part_times, peak_memory,
                                          synchronize, time_fn)
from glid_tools.benchmark.models import (GLID_PRETRAIN,
                                         GLID_PRETRAIN_MASKTOKEN, SIMMIM,
                                         BenchModel, build_model, load_config,
                                         model_note)
from glid_tools.benchmark.report import make_result, run_row
from glid_tools.progress import Progress

COLUMNS = (
    ('model', 'model', ''),
    ('config', 'config', ''),
    ('params_m', 'params (M)', '.1f'),
    ('step_ms', 'step (ms)', '.1f'),
    ('images_per_s', 'images/s', '.2f'),
    ('relative_speed', 'speed vs GLID', '.2f'),
    ('peak_memory_mib', 'peak memory (MiB)', '.0f'),
    ('fwd_gflops_per_image', 'fwd GFLOPs/img', '.3g'),
    ('achieved_tflops', 'achieved TFLOP/s', '.3g'),
    ('mfu_percent', 'MFU (%)', '.1f'),
    ('encoder_ms', 'encoder fwd (ms)', '.1f'),
    ('fpn_ms', 'Bi-FPN fwd (ms)', '.1f'),
    ('decoder_ms', 'decoder fwd (ms)', '.1f'),
    ('head_ms', 'head fwd (ms)', '.1f'),
    ('rest_ms', 'other fwd (ms)', '.1f'),
    ('backward_ms', 'backward (ms)', '.1f'),
    ('optimizer_ms', 'optimizer (ms)', '.1f'),
    ('note', 'note', ''),
)

#: benchmark part name -> result column (SimMIM's one-layer decoder, its
#: ``neck``, is its "decoder" part; parts without a column are not shown)
PART_COLUMNS = dict(
    encoder='encoder_ms',
    fpn='fpn_ms',
    decoder='decoder_ms',
    head='head_ms',
    rest='rest_ms')


def _find_mask_transform(node) -> Optional[dict]:
    """The first ``*MaskGenerator`` transform inside a dataloader config."""
    if isinstance(node, dict):
        if 'MaskGenerator' in str(node.get('type', '')):
            return dict(node)
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return None
    for child in children:
        found = _find_mask_transform(child)
        if found is not None:
            return found
    return None


def pretrain_batch(cfg,
                   batch_size: int,
                   img_size: int,
                   device: torch.device,
                   seed: int = 0) -> dict:
    """A random uint8 batch with masks from the config's mask generator.

    Returns:
        dict: ``inputs [B, 3, H, W]`` uint8 on ``device`` and
        ``data_samples`` (mmpretrain ``DataSample`` with ``mask``), what
        ``default_collate`` of the config's pipeline gives.
    """
    from mmengine.dataset import Compose
    mask_cfg = _find_mask_transform(cfg.train_dataloader)
    if mask_cfg is None:
        return pipeline_batch(cfg, batch_size, img_size, device, seed)
    if 'input_size' in mask_cfg:  # SimMIMMaskGenerator
        mask_cfg['input_size'] = img_size
    if img_size % mask_cfg['mask_patch_size']:
        raise ValueError(f'img_size {img_size} is not a multiple of the '
                         f"mask patch {mask_cfg['mask_patch_size']}")
    pipeline = Compose([mask_cfg, dict(type='PackInputs')])
    rng = np.random.default_rng(seed)
    np.random.seed(seed)  # the mask generators draw from numpy
    items = []
    for _ in range(batch_size):
        img = rng.integers(0, 256, (img_size, img_size, 3), dtype=np.uint8)
        items.append(
            pipeline(
                dict(
                    img=img, img_shape=img.shape[:2],
                    ori_shape=img.shape[:2])))
    return dict(
        inputs=torch.stack([it['inputs'] for it in items]).to(device),
        data_samples=[it['data_samples'].to(device) for it in items])


def _find_pipeline(node) -> Optional[list]:
    """The first ``pipeline`` list inside a dataloader config."""
    if isinstance(node, dict):
        if isinstance(node.get('pipeline'), (list, tuple)):
            return list(node['pipeline'])
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return None
    for child in children:
        found = _find_pipeline(child)
        if found is not None:
            return found
    return None


def _set_crop_size(node, img_size: int):
    """Set every ``RandomResizedCrop`` (also nested, e.g. M3I's views) of a
    pipeline config to ``img_size``, in place."""
    if isinstance(node, dict):
        if node.get('type') == 'RandomResizedCrop':
            node['scale'] = img_size
        for child in node.values():
            _set_crop_size(child, img_size)
    elif isinstance(node, (list, tuple)):
        for child in node:
            _set_crop_size(child, img_size)


def pipeline_batch(cfg,
                   batch_size: int,
                   img_size: int,
                   device: torch.device,
                   seed: int = 0) -> dict:
    """A batch from the config's own training pipeline on random images.

    For pre-training configs whose masking happens in the model (MAE) or
    whose inputs are not one masked view (M3I's two views with crop boxes):
    the pipeline after ``LoadImageFromFile`` runs on random uint8 images of
    ``1.25 * img_size`` (its crops resized to ``img_size``), with label 0
    for configs that need a category target, then ``default_collate``.

    Returns:
        dict: ``inputs`` (a tensor or the list of views) on ``device`` and
        ``data_samples``.
    """
    import copy

    from mmengine.dataset import Compose, default_collate
    pipeline = _find_pipeline(cfg.train_dataloader)
    if pipeline is None:
        raise KeyError('no pipeline in train_dataloader')
    pipeline = [
        copy.deepcopy(t) for t in pipeline
        if t.get('type') != 'LoadImageFromFile'
    ]
    _set_crop_size(pipeline, img_size)
    transform = Compose(pipeline)
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    side = int(1.25 * img_size)
    items = []
    for _ in range(batch_size):
        img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        items.append(
            transform(
                dict(
                    img=img,
                    img_shape=img.shape[:2],
                    ori_shape=img.shape[:2],
                    gt_label=0)))
    batch = default_collate(items)
    inputs = batch['inputs']
    if isinstance(inputs, (list, tuple)):
        inputs = [x.to(device) for x in inputs]
    else:
        inputs = inputs.to(device)
    return dict(
        inputs=inputs,
        data_samples=[ds.to(device) for ds in batch['data_samples']])


def _optim_wrapper(model, cfg):
    """The config's optimizer wrapper as a plain ``OptimWrapper`` (the
    precision is set by the benchmark's autocast, identically for all)."""
    ow = cfg.optim_wrapper.copy()
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        ow.pop(key, None)
    ow['type'] = 'OptimWrapper'
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # no line per parameter group
    try:
        return build_optim_wrapper(model, ow)
    finally:
        logger.setLevel(level)


def total_loss(losses: Dict[str, object]) -> torch.Tensor:
    """Sum of the ``*loss*`` tensors of a loss dict (what
    ``parse_losses`` optimises)."""
    return sum(v.mean() for k, v in losses.items()
               if 'loss' in k and isinstance(v, torch.Tensor))


def mfu(fwd_flops_per_step: float, step_s: float,
        peak_tflops: Optional[float]) -> Optional[float]:
    """Model FLOPs utilisation in percent.

    Args:
        fwd_flops_per_step: Forward multiply-adds of one step (fvcore
            count; converted here to 2 FLOPs per multiply-add).
        step_s: Seconds per step.
        peak_tflops: Dense peak of the device in TFLOP/s (None: unknown).
    """
    if not peak_tflops or step_s <= 0:
        return None
    step_flops = 3 * 2 * fwd_flops_per_step
    return 100.0 * step_flops / step_s / (peak_tflops * 1e12)


def _measure(spec: BenchModel, arch: str, device: torch.device, dtype: str,
             batch_size: int, img_size: int, warmup: int, iters: int,
             with_flops: bool, peak_tflops: Optional[float]) -> dict:
    options = dict(spec.options.get(arch) or {})
    cfg = load_config(spec.config(arch), options)
    cfg.model.backbone.img_size = img_size
    model = build_model(cfg, device).train()
    # schedules inside a model (M3I's momentum) read the runner's progress
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    hub.update_info('max_iters', max(1000, warmup + iters + 2))
    optim_wrapper = _optim_wrapper(model, cfg)
    data = pretrain_batch(cfg, batch_size, img_size, device)
    row = dict(params_m=param_counts(model)['total'] / 1e6)
    notes = []
    if with_flops:
        # two images (M3I pairs each image with another), per image after
        n = min(2, batch_size)
        x = data['inputs']
        x = [v[:n] for v in x] if isinstance(x, (list, tuple)) else x[:n]
        one = model.data_preprocessor(
            dict(inputs=x, data_samples=data['data_samples'][:n]), True)
        try:
            flops = count_flops(
                model, lambda m, x: total_loss(m.loss(x, one['data_samples'])),
                (one['inputs'], ))
        except Exception as e:  # the tracer cannot follow every model
            # eager count instead (torch's FlopCounterMode counts 2 FLOPs
            # per multiply-add: halved to FlopAnalyzer's convention)
            from torch.utils.flop_counter import FlopCounterMode
            with FlopCounterMode(display=False) as counter:
                total_loss(model.loss(one['inputs'], one['data_samples']))
            row['fwd_gflops_per_image'] = \
                counter.get_total_flops() / 2 / n / 1e9
            notes.append('FLOPs by torch FlopCounterMode (matmul / conv '
                         'only; FlopAnalyzer could not trace: '
                         f'{type(e).__name__})')
        else:
            row['fwd_gflops_per_image'] = flops['total'] / n / 1e9
            note = unsupported_note(flops['unsupported'])
            if note:
                notes.append(note)

    def step():
        with autocast(device, dtype):
            batch = model.data_preprocessor(data, True)
            losses = model(**batch, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    timing = time_fn(step, device, warmup=warmup, iters=iters)
    mem = peak_memory(step, device)
    row.update(
        step_profile(model, spec.parts, data, optim_wrapper, device, dtype,
                     iters))
    step_s = timing['mean_s']
    row.update(
        step_ms=1e3 * step_s,
        step_median_ms=1e3 * timing['median_s'],
        images_per_s=batch_size / step_s,
        peak_memory_mib=None if mem is None else mem / 2**20)
    if with_flops:
        fwd = row['fwd_gflops_per_image'] * 1e9 * batch_size
        row['achieved_tflops'] = 3 * 2 * fwd / step_s / 1e12
        if dtype == 'bf16':
            row['mfu_percent'] = mfu(fwd, step_s, peak_tflops)
    row['note'] = model_note(spec, arch, notes)
    return row


def step_profile(model, parts: Dict[str, Sequence[str]], data: dict,
                 optim_wrapper, device: torch.device, dtype: str,
                 iters: int) -> Dict[str, float]:
    """Milliseconds per step in each part, in separate profiled steps.

    The forward (preprocessor + loss) is split by module with
    :func:`glid_tools.benchmark.measure.part_times` (exclusive times, a
    synchronize at every part boundary); backward and the optimizer step
    are timed around ``optim_wrapper.backward`` / ``step``. Profiled steps
    are slower than the plain ones by the synchronisation, so the parts
    may sum to a little more than ``step (ms)``.
    """
    spent = dict(backward=0.0, optimizer=0.0)
    losses = []
    names = dict(model.named_modules())
    # parts held outside the module tree (M3I's momentum encoder) are left
    # in 'rest'
    parts = {
        part: mods
        for part, mods in parts.items() if all(m in names for m in mods)
    }

    def forward():
        with autocast(device, dtype):
            batch = model.data_preprocessor(data, True)
            loss, _ = model.parse_losses(model(**batch, mode='loss'))
        losses.append(loss)

    fwd = dict.fromkeys(list(parts) + ['rest'], 0.0)
    for _ in range(iters):
        for part, sec in part_times(model, forward, parts, device).items():
            fwd[part] += sec
        synchronize(device)
        start = time.perf_counter()
        optim_wrapper.backward(losses.pop())
        synchronize(device)
        mid = time.perf_counter()
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        synchronize(device)
        spent['backward'] += mid - start
        spent['optimizer'] += time.perf_counter() - mid
    out = {
        PART_COLUMNS[part]: 1e3 * sec / iters
        for part, sec in fwd.items() if part in PART_COLUMNS
    }
    out.update({f'{k}_ms': 1e3 * v / iters for k, v in spent.items()})
    return out


def benchmark_pretrain_step(arch: str = 'base',
                            device: str = 'cuda',
                            dtype: str = 'bf16',
                            batch_size: int = 128,
                            img_size: int = 192,
                            warmup: int = 2,
                            iters: int = 10,
                            with_flops: bool = True,
                            models: Sequence[BenchModel] = (
                                GLID_PRETRAIN, GLID_PRETRAIN_MASKTOKEN,
                                SIMMIM),
                            name: str = 'glid_pretrain_step',
                            title: str = 'GLID pre-training step vs SimMIM',
                            description: Optional[str] = None,
                            progress: bool = True) -> dict:
    """Time one pre-training step of each model; see the module docstring.

    Args:
        arch: ``'base'`` (Swin-B, the paper-scale setting) or ``'nano'``.
        device: ``'cuda'`` or ``'cpu'``.
        dtype: ``'bf16'`` or ``'fp32'``.
        batch_size: Images per step and device (16 x 128 in GLID's recipe).
        img_size: Square input size (192 in both recipes).
        warmup, iters: Untimed and timed steps.
        with_flops: Count forward FLOPs (needed for MFU).
        models: The rows; the first is the reference of ``speed vs GLID``.
        name, title, description: Of the result (its file name and table
            heading); the defaults are GLID vs SimMIM's.
        progress: Show a progress bar with elapsed time and ETA over the
            models (mmengine's ``ProgressBar``).

    Returns:
        dict: a result for :func:`glid_tools.benchmark.report.write_results`.
    """
    for key, val in dict(
            batch_size=batch_size, img_size=img_size, iters=iters).items():
        if not isinstance(val, int) or val < 1:
            raise ValueError(f'{key} must be a positive int, got {val!r}')
    dev = torch.device(device)
    env = collect_environment(dev)
    peak, peak_note = (None, 'MFU only on a CUDA device')
    if dev.type == 'cuda':
        peak, peak_note = dense_bf16_peak_tflops(env['gpu'])
    rows: List[dict] = []
    bar = Progress(len(models), enabled=progress)
    for spec in models:
        base = dict(model=spec.name, role=spec.role, config=spec.config(arch))
        rows.append(
            run_row(
                base,
                lambda: _measure(spec, arch, dev, dtype, batch_size, img_size,
                                 warmup, iters, with_flops, peak)))
        bar.update()
    bar.close()
    ref = rows[0].get('images_per_s')
    for row in rows:
        if ref and row.get('images_per_s'):
            row['relative_speed'] = row['images_per_s'] / ref
    notes = [
        CUDA_MEMORY_NOTE if dev.type == 'cuda' else CPU_MEMORY_NOTE,
        'step = data preprocessor + forward + loss + backward + optimizer '
        'step (config optimizer, as a plain OptimWrapper under '
        f'torch.autocast {dtype}); batch already on the device',
        'fwd GFLOPs/img: FlopAnalyzer, 1 multiply-add = 1 FLOP; achieved '
        'TFLOP/s and MFU use 3 x forward x 2 FLOPs per multiply-add',
        peak_note if dtype == 'bf16' else 'MFU only for bf16',
    ]
    return make_result(
        name=name,
        title=title,
        description=description or 'One optimisation step of '
        'masked-image-modelling pre-training, GLID (configs/glid) vs '
        'mmpretrain SimMIM, same device, precision, batch and image size.',
        environment=env,
        settings=dict(
            arch=arch,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            img_size=img_size,
            warmup=warmup,
            iters=iters),
        columns=COLUMNS,
        rows=rows,
        notes=notes)


__all__ = ['benchmark_pretrain_step', 'pretrain_batch', 'mfu', 'total_loss']
