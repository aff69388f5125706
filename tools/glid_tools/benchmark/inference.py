"""GLID panoptic / detection inference vs mmdet's models.

One inference batch exactly as mmengine's ``BaseModel.test_step`` runs it
in ``tools/test.py``: the data preprocessor (normalisation and padding of
the uint8 images, already on the device: loading and resizing are not
timed), the forward pass and mmdet's post-processing into
``DetDataSample`` predictions (panoptic fusion / box decoding), under
``torch.no_grad()`` and, for bf16, ``torch.autocast(dtype=bfloat16)``.

- Panoptic (item 2): GLID Swin-B (Bi-FPN + query decoder + one linear head,
  GLID Sec. 3.2 eq. 3-4) vs mmdet's Mask2Former Swin-B (MSDeformAttn pixel
  decoder + 9-layer masked-attention decoder), both with ADE20K's 100 + 50
  classes and panoptic output only, at 640x640. supp. Table 2 compares
  Bi-FPN (33.8 GFLOPs / 5.0 M) with an MSDeformAttn FPN (55.3 G / 5.5 M);
  the ``fpn`` FLOPs columns measure both here. mmcv's deformable
  attention has no bf16 CUDA kernel: under bf16 Mask2Former's row says
  'not run' and a second row measures it with float16 autocast.
- Detection (item 3): GLID Swin-B with 300 evaluation queries (Sec. 4) vs
  mmdet's DINO and DETR with mmdet's Swin-B in their stock configs.

Forward FLOPs (without post-processing) are counted per part on one image
by :func:`glid_tools.benchmark.flops.count_flops` (one multiply-add = one
FLOP). A peer that cannot run a setting (e.g. mmcv's
``MultiScaleDeformableAttention`` CUDA kernel has no bf16 version) gets a
'not run: <reason>' row.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from glid_tools.benchmark.environment import collect_environment
from glid_tools.benchmark.flops import (count_flops, param_counts,
                                        unsupported_note)
from glid_tools.benchmark.measure import (CPU_MEMORY_NOTE, CUDA_MEMORY_NOTE,
                                          autocast, part_times, peak_memory,
                                          time_fn)
from glid_tools.benchmark.models import (DETR, DINO, GLID_DETECTION,
                                         GLID_PANOPTIC, BenchModel,
                                         build_model, load_config, mask2former,
                                         model_note, model_queries)
from glid_tools.benchmark.report import make_result, run_row
from glid_tools.progress import Progress

NO_BF16 = ("mmcv's MultiScaleDeformableAttention CUDA kernel has no bf16 "
           'version (float, double, half only)')
PART_COLUMNS = (
    ('gflops_encoder', 'encoder', '.3g'),
    ('gflops_fpn', 'FPN / pixel dec.', '.3g'),
    ('gflops_decoder', 'decoder', '.3g'),
    ('gflops_head', 'head', '.3g'),
)
COLUMNS = (
    ('model', 'model', ''),
    ('config', 'config', ''),
    ('queries', 'queries', 'd'),
    ('params_m', 'params (M)', '.1f'),
    ('latency_ms', 'latency (ms/batch)', '.1f'),
    ('images_per_s', 'images/s', '.2f'),
    ('relative_speed', 'speed vs GLID', '.2f'),
    ('peak_memory_mib', 'peak memory (MiB)', '.0f'),
    ('gflops_per_image', 'fwd GFLOPs/img', '.3g'),
) + tuple((k, f'GFLOPs {h}', f) for k, h, f in PART_COLUMNS) + (
    ('fpn_params_m', 'FPN params (M)', '.3g'), ) + tuple(
        (f'ms_{k[len("gflops_"):]}', f'ms {h}', '.1f')
        for k, h, _ in PART_COLUMNS) + (
            ('ms_rest', 'ms rest', '.1f'),
            ('note', 'note', ''),
        )


def det_batch(batch_size: int,
              img_hw: Tuple[int, int],
              device: torch.device,
              seed: int = 0) -> dict:
    """Random uint8 images ``[3, H, W]`` with the metainfo mmdet's
    ``PackDetInputs`` gives an image loaded at size ``H x W`` (no resize)."""
    from mmdet.structures import DetDataSample
    rng = np.random.default_rng(seed)
    H, W = img_hw
    inputs, samples = [], []
    for i in range(batch_size):
        inputs.append(
            torch.from_numpy(rng.integers(0, 256, (3, H, W),
                                          dtype=np.uint8)).to(device))
        samples.append(
            DetDataSample(
                metainfo=dict(
                    img_id=i,
                    img_path=f'random_{i}.jpg',
                    ori_shape=(H, W),
                    img_shape=(H, W),
                    scale_factor=(1.0, 1.0),
                    flip=False,
                    flip_direction=None)))
    return dict(inputs=inputs, data_samples=samples)


def explain_failure(exc: BaseException, model: Optional[torch.nn.Module],
                    device: torch.device, dtype: str) -> Optional[str]:
    """A readable reason for known peer limitations (None if unknown)."""
    msg = str(exc)
    has_msda = model is not None and any(
        type(m).__name__ == 'MultiScaleDeformableAttention'
        for m in model.modules())
    if has_msda and dtype == 'bf16' and 'bfloat16' in msg.lower():
        return NO_BF16
    if 'implementation for device cpu not found' in msg:
        return "uses an mmcv op with CUDA kernels only (no CPU version)"
    if device.type == 'cuda' and ('implementation for device cuda not found'
                                  in msg or 'not compiled with GPU' in msg):
        return "mmcv was built without its CUDA ops (setup_env.sh --cuda)"
    return None


def _measure(spec: BenchModel, arch: str, device: torch.device, dtype: str,
             batch_size: int, img_hw: Tuple[int, int], warmup: int, iters: int,
             with_flops: bool, holder: dict) -> dict:
    cfg = load_config(spec.config(arch), spec.options.get(arch))
    model = build_model(cfg, device).eval()
    holder['model'] = model
    data = det_batch(batch_size, img_hw, device)
    params = param_counts(model, spec.parts)
    row = dict(
        queries=model_queries(model),
        params_m=params['total'] / 1e6,
        fpn_params_m=params['fpn'] / 1e6 if 'fpn' in params else None)
    notes = []
    if with_flops:
        with torch.no_grad():
            one = model.data_preprocessor(
                dict(
                    inputs=data['inputs'][:1],
                    data_samples=data['data_samples'][:1]), False)
        flops = count_flops(model,
                            lambda m, x: m._forward(x, one['data_samples']),
                            (one['inputs'], ), spec.parts)
        row['gflops_per_image'] = flops['total'] / 1e9
        for part, value in flops.get('parts', {}).items():
            row[f'gflops_{part}'] = value / 1e9
        note = unsupported_note(flops['unsupported'])
        if note:
            notes.append(note)

    def step():
        with torch.no_grad(), autocast(device, dtype):
            return model.test_step(data)

    timing = time_fn(step, device, warmup=warmup, iters=iters)
    mem = peak_memory(step, device)
    if spec.parts:
        for part, sec in part_times(model, step, spec.parts, device).items():
            row[f'ms_{part}'] = 1e3 * sec
    row.update(
        latency_ms=1e3 * timing['mean_s'],
        latency_median_ms=1e3 * timing['median_s'],
        images_per_s=batch_size / timing['mean_s'],
        peak_memory_mib=None if mem is None else mem / 2**20,
        note=model_note(spec, arch, notes))
    return row


def benchmark_inference(task: str,
                        arch: str = 'base',
                        device: str = 'cuda',
                        dtype: str = 'bf16',
                        batch_size: int = 1,
                        img_size: Sequence[int] = (640, 640),
                        warmup: int = 2,
                        iters: int = 10,
                        with_flops: bool = True,
                        models: Optional[Sequence[BenchModel]] = None,
                        progress: bool = True) -> dict:
    """Time ``test_step`` of GLID and its peers; see the module docstring.

    Args:
        task: ``'panoptic'`` (GLID vs Mask2Former) or ``'detection'`` (GLID
            vs DINO and DETR).
        arch: ``'base'`` (Swin-B, the paper-scale setting) or ``'nano'``.
        device, dtype: ``'cuda'`` / ``'cpu'``; ``'bf16'`` / ``'fp32'``.
        batch_size: Images per batch (latency = seconds per batch).
        img_size: ``(H, W)`` of the input images (no resizing).
        warmup, iters: Untimed and timed batches.
        with_flops: Count forward FLOPs per part.
        models: Rows (default: the task's GLID model and its peers); the
            first is the reference of ``speed vs GLID``.
        progress: Show a progress bar with elapsed time and ETA over the
            models (mmengine's ``ProgressBar``).
    """
    if task not in ('panoptic', 'detection'):
        raise ValueError(f"task must be 'panoptic' or 'detection', got "
                         f'{task!r}')
    for key, val in dict(batch_size=batch_size, iters=iters).items():
        if not isinstance(val, int) or val < 1:
            raise ValueError(f'{key} must be a positive int, got {val!r}')
    img_hw = tuple(int(s) for s in img_size)
    if len(img_hw) != 2 or min(img_hw) < 32:
        raise ValueError(f'img_size must be (H, W) >= 32, got {img_size!r}')
    if models is None:
        models = (GLID_PANOPTIC, mask2former(100, 50)) if task == \
            'panoptic' else (GLID_DETECTION, DINO, DETR)
    dev = torch.device(device)
    env = collect_environment(dev)
    rows: List[dict] = []
    bar = Progress(len(models), enabled=progress)
    for spec in models:
        holder = {}
        base = dict(model=spec.name, role=spec.role, config=spec.config(arch))
        rows.append(
            run_row(
                base,
                lambda: _measure(spec, arch, dev, dtype, batch_size, img_hw,
                                 warmup, iters, with_flops, holder),
                explain=lambda e: explain_failure(e, holder.get('model'), dev,
                                                  dtype)))
        holder.clear()
        if spec.role == 'peer' and NO_BF16 in rows[-1]['status']:
            # the peer at its best: float16 autocast, its fastest setting
            rows.append(
                run_row(
                    dict(base, model=f'{spec.name} (fp16)'),
                    lambda: _measure(spec, arch, dev, 'fp16', batch_size,
                                     img_hw, warmup, iters, False, holder)))
            rows[-1]['note'] = (f'fp16 autocast instead of {dtype}: '
                                f'{NO_BF16}; ' + rows[-1].get('note', ''))
            holder.clear()
        bar.update()
    bar.close()
    ref = rows[0].get('images_per_s')
    for row in rows:
        if ref and row.get('images_per_s'):
            row['relative_speed'] = row['images_per_s'] / ref
    title = dict(
        panoptic='GLID panoptic inference vs Mask2Former',
        detection='GLID detection inference vs DINO / DETR')[task]
    notes = [
        CUDA_MEMORY_NOTE if dev.type == 'cuda' else CPU_MEMORY_NOTE,
        'latency = one test_step (data preprocessor + forward + mmdet '
        'post-processing) under no_grad, mean of the timed batches; '
        'images on the device, random weights',
        'GFLOPs: forward without post-processing, one image, FlopAnalyzer '
        '(1 multiply-add = 1 FLOP); parts: encoder = backbone, FPN = '
        "GLID's Bi-FPN / Mask2Former's MSDeformAttn pixel decoder / "
        "DETR-DINO's neck + transformer encoder, other = glue not listed",
        'ms <part>: one more test_step with a clock (after a CUDA '
        'synchronize) at each part\'s entry and exit; ms rest = data '
        'preprocessing, glue and post-processing',
    ]
    if task == 'panoptic':
        notes.append('supp. Table 2 (GLID Swin-B, ADE20K 640x640): BiFPN '
                     '33.8 GFLOPs / 5.0 M params; MSDeformAttn 55.3 GFLOPs /'
                     ' 5.5 M params')
    return make_result(
        name=f'glid_{task}_inference',
        title=title,
        description=f'{task.capitalize()} inference through test_step, '
        'GLID (configs/glid) vs mmdet models from their stock configs, '
        'same device, precision, batch and input size.',
        environment=env,
        settings=dict(
            task=task,
            arch=arch,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            img_size=f'{img_hw[0]}x{img_hw[1]}',
            warmup=warmup,
            iters=iters),
        columns=COLUMNS,
        rows=rows,
        notes=notes)
