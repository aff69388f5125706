"""LiT decoding, GPPF lego memory and SIMT overhead in one table.

- **LiT decoding** (LiT decoder paper, Sec. 5.8): greedy decoding with the
  key/value cache vs without, and beam search vs greedy, by
  :func:`glid_tools.benchmark.lit_decoding.benchmark_decoding` (fp32;
  random weights and image tokens).
- **Lego memory** (GPPF Sec. 3.2, Fig. 2a): one training step (forward of
  the backbone, sum of its outputs, backward) of the ``LegoResNet`` of a
  GPPF config with soft Gumbel-Softmax mixing (every unit of every layer
  runs: about ``N`` times the activations of one path) and with hard
  straight-through samples (each unit still runs in the forward pass of
  the straight-through estimator, see :class:`LegoLayer`), against mmdet's
  plain ``ResNet`` of the same depth, width and checkpointing, i.e. the
  network one exported path is (Sec. 3.3).
- **SIMT overhead** (GPPF Sec. 3.2): the task-averaged gradient
  (:func:`task_average_gradients`: an all-reduce of per-parameter "used"
  flags, bucketed all-reduces of the gradients, a division by each
  parameter's user count) against DDP's rule (one bucketed all-reduce and
  a division by the world size) on the lego backbone's gradients, in a
  one-process group (gloo on CPU, nccl on CUDA). With one process the
  all-reduces move nothing, so this is the bookkeeping overhead of SIMT
  over DDP, not a communication cost; the multi-process cost needs
  ``tools/dist_train.sh`` on the real cluster. Each rule is timed as the
  best of 3 medians of at least 20 calls, the two rules interleaved.
"""
import os
import tempfile
from typing import List, Optional

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from glid_tools.benchmark.environment import collect_environment
from glid_tools.benchmark.measure import (CPU_MEMORY_NOTE, CUDA_MEMORY_NOTE,
                                          autocast, peak_memory, time_fn)
from glid_tools.benchmark.models import load_config
from glid_tools.benchmark.report import make_result, run_rows
from glid_tools.progress import Progress

COLUMNS = (
    ('group', 'group', ''),
    ('measurement', 'measurement', ''),
    ('setting', 'setting', ''),
    ('value', 'value', '.4g'),
    ('unit', 'unit', ''),
)
GPPF_CONFIGS = dict(
    base='configs/gppf/gppf_lego-r50-n2_56xsimt-500k_coco-ade20k-in21k.py',
    nano='configs/gppf/'
    'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py')
LIT_SETTINGS = dict(
    base=dict(),  # paper scale: batch 64, length 64, base, 196 x 768
    nano=dict(
        arch='tiny',
        batch_size=2,
        seq_len=8,
        memory_tokens=4,
        memory_dims=16,
        vocab_size=300,
        num_beams=2))


def lit_rows(arch: str, device: str) -> List[dict]:
    """LiT decoding speed rows."""
    from glid_tools.benchmark.lit_decoding import benchmark_decoding

    # one bar for the three groups (benchmark_side_costs'), none inside
    r = benchmark_decoding(device=device, progress=False, **LIT_SETTINGS[arch])
    setting = (f"{r['arch']} decoder ({r['num_layers']} layers), batch "
               f"{r['batch_size']}, length {r['seq_len']}, "
               f"{r['memory_tokens']} image tokens, fp32")
    return [
        dict(
            measurement='greedy, KV cache',
            value=r['greedy_cached_tok_s'],
            unit='tokens/s',
            setting=setting),
        dict(
            measurement='greedy, no cache',
            value=r['greedy_uncached_tok_s'],
            unit='tokens/s',
            setting=setting),
        dict(
            measurement='KV cache speed-up',
            value=r['cache_speedup'],
            unit='x',
            setting=setting),
        dict(
            measurement=f"beam-{r['num_beams']} / greedy latency",
            value=r['beam_vs_greedy'],
            unit='x',
            setting=setting),
    ]


def _backbones(arch: str, device: torch.device):
    """The GPPF config's ``LegoResNet`` (soft and hard) and the plain mmdet
    ``ResNet`` of the same depth, width and checkpointing."""
    from mmdet.models.backbones import ResNet

    import glid_mm  # noqa: F401  (registers our components)
    from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
    cfg = load_config(GPPF_CONFIGS[arch]).model.backbone.to_dict()
    cfg.pop('type')
    cfg['norm_cfg'] = dict(type='BN')  # one process: CrossTaskSyncBN == BN
    cfg.setdefault('default_task', cfg['task_names'][0])  # one task's step
    lego = {
        mode: LegoResNet(**dict(cfg, hard=mode == 'hard')).to(device)
        for mode in ('soft', 'hard')
    }
    width = cfg.get('base_channels', 64)
    plain = ResNet(
        depth=cfg.get('depth', 50),
        stem_channels=cfg.get('stem_channels', 64),
        base_channels=width,
        with_cp=cfg.get('with_cp', False)).to(device)
    return lego, plain, cfg


def _step_fn(model, x, dtype, device):

    def step():
        model.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            loss = sum(o.float().mean() for o in model(x))
        loss.backward()

    return step


def lego_rows(arch: str, device: torch.device, dtype: str, batch_size: int,
              img_size: int, warmup: int, iters: int) -> List[dict]:
    """Time and peak memory of a lego vs plain backbone training step."""
    lego, plain, cfg = _backbones(arch, device)
    x = torch.randn(batch_size, 3, img_size, img_size, device=device)
    setting = (f"ResNet-{cfg.get('depth', 50)} width "
               f"{cfg.get('base_channels', 64)}, N={cfg.get('num_units', 2)}"
               f", with_cp={cfg.get('with_cp', False)}, batch {batch_size}, "
               f'{img_size} px, {dtype}')
    measured = {}
    for name, model in (('plain ResNet (one path)', plain),
                        ('lego soft', lego['soft']), ('lego hard',
                                                      lego['hard'])):
        model.train()
        step = _step_fn(model, x, dtype, device)
        t = time_fn(step, device, warmup=warmup, iters=iters)['mean_s']
        mem = peak_memory(step, device)
        measured[name] = (t, mem)
    rows = []
    t0, m0 = measured['plain ResNet (one path)']
    for name, (t, mem) in measured.items():
        rows.append(
            dict(
                measurement=f'{name}: step',
                value=1e3 * t,
                unit='ms',
                setting=setting))
        rows.append(
            dict(
                measurement=f'{name}: peak memory',
                value=None if mem is None else mem / 2**20,
                unit='MiB',
                setting=setting))
        if name != 'plain ResNet (one path)':
            rows.append(
                dict(
                    measurement=f'{name} / plain: memory',
                    value=mem / m0 if mem and m0 else None,
                    unit='x',
                    setting=setting))
            rows.append(
                dict(
                    measurement=f'{name} / plain: time',
                    value=t / t0,
                    unit='x',
                    setting=setting))
    return rows


def _ddp_average(params, bucket_size_mb: float = 25) -> None:
    """DDP's rule on the same gradients: bucketed all-reduce / world size."""
    world = dist.get_world_size()
    grads = [p.grad for p in params if p.grad is not None]
    limit = int(bucket_size_mb * 2**20)
    bucket, size = [], 0
    for g in grads + [None]:
        if g is None or (bucket
                         and size + g.numel() * g.element_size() > limit):
            flat = _flatten_dense_tensors(bucket)
            dist.all_reduce(flat)
            flat.div_(world)
            for old, new in zip(bucket, _unflatten_dense_tensors(flat,
                                                                 bucket)):
                old.copy_(new)
            bucket, size = [], 0
        if g is not None:
            bucket.append(g)
            size += g.numel() * g.element_size()


def simt_rows(arch: str, device: torch.device, dtype: str, batch_size: int,
              img_size: int, warmup: int, iters: int) -> List[dict]:
    """Task-averaged vs DDP gradient averaging on the lego gradients."""
    from glid_mm.engine.model_wrappers.gppf_task_average import \
        task_average_gradients
    lego, _, cfg = _backbones(arch, device)
    model = lego['soft'].train()
    x = torch.randn(batch_size, 3, img_size, img_size, device=device)
    step = _step_fn(model, x, dtype, device)
    t_step = time_fn(step, device, warmup=warmup, iters=iters)['mean_s']
    step()  # gradients to average
    params = [p for p in model.parameters() if p.requires_grad]
    own_group = not (dist.is_available() and dist.is_initialized())
    tmp = None
    if own_group:
        tmp = tempfile.NamedTemporaryFile(prefix='glid_mm_simt_', delete=False)
        tmp.close()
        dist.init_process_group(
            'nccl' if device.type == 'cuda' else 'gloo',
            init_method=f'file://{tmp.name}',
            rank=0,
            world_size=1)
    try:
        # cheap calls on a possibly shared machine: medians of many runs,
        # the two rules interleaved
        reps = max(iters, 20)
        t_simt, t_ddp = [], []
        for _ in range(3):
            t_simt.append(
                time_fn(
                    lambda: task_average_gradients(params),
                    device,
                    warmup=warmup,
                    iters=reps)['median_s'])
            t_ddp.append(
                time_fn(
                    lambda: _ddp_average(params),
                    device,
                    warmup=warmup,
                    iters=reps)['median_s'])
        t_simt, t_ddp = min(t_simt), min(t_ddp)
        world = dist.get_world_size()
    finally:
        if own_group:
            dist.destroy_process_group()
            if os.path.exists(tmp.name):  # the FileStore may remove it
                os.unlink(tmp.name)
    setting = (f'lego soft ResNet-{cfg.get("depth", 50)} width '
               f'{cfg.get("base_channels", 64)}, '
               f'{sum(p.numel() for p in params) / 1e6:.2f} M parameters, '
               f'world size {world}')
    return [
        dict(
            measurement='task-averaged gradients (SIMT)',
            value=1e3 * t_simt,
            unit='ms',
            setting=setting),
        dict(
            measurement='DDP-rule averaging',
            value=1e3 * t_ddp,
            unit='ms',
            setting=setting),
        dict(
            measurement='SIMT overhead over DDP rule',
            value=1e3 * (t_simt - t_ddp),
            unit='ms',
            setting=setting),
        dict(
            measurement='SIMT overhead / backbone step',
            value=100 * (t_simt - t_ddp) / t_step,
            unit='%',
            setting=setting + f', step {1e3 * t_step:.1f} ms'),
    ]


def benchmark_side_costs(arch: str = 'base',
                         device: str = 'cuda',
                         dtype: str = 'bf16',
                         batch_size: Optional[int] = None,
                         img_size: Optional[int] = None,
                         warmup: int = 1,
                         iters: int = 5,
                         progress: bool = True) -> dict:
    """The three measurements above in one result.

    Args:
        arch: ``'base'`` (the GPPF paper config's ResNet-50, N = 2, with
            checkpointing; the LiT decoder's paper-scale decoding settings)
            or ``'nano'`` (the tiny GPPF config, width 16; a tiny LiT
            decoder).
        device, dtype: Device and precision of the lego / SIMT steps (LiT
            decoding runs fp32).
        batch_size, img_size: Lego / SIMT input (default: base 32 x 224,
            nano 2 x 64).
        warmup, iters: Untimed and timed runs.
        progress: Show a progress bar with elapsed time and ETA over the
            three groups (mmengine's ``ProgressBar``).
    """
    if arch not in GPPF_CONFIGS:
        raise ValueError(f"arch must be one of {sorted(GPPF_CONFIGS)}, got "
                         f'{arch!r}')
    batch_size = batch_size or (32 if arch == 'base' else 2)
    img_size = img_size or (224 if arch == 'base' else 64)
    dev = torch.device(device)
    args = (arch, dev, dtype, batch_size, img_size, warmup, iters)
    rows = []
    bar = Progress(3, enabled=progress)
    rows += run_rows(
        dict(group='LiT decoding', measurement='decoding', role='glid_mm'),
        lambda: lit_rows(arch, device))
    bar.update()
    rows += run_rows(
        dict(
            group='GPPF lego memory', measurement='lego step', role='glid_mm'),
        lambda: lego_rows(*args))
    bar.update()
    rows += run_rows(
        dict(
            group='GPPF SIMT overhead',
            measurement='gradient averaging',
            role='glid_mm'), lambda: simt_rows(*args))
    bar.update()
    bar.close()
    return make_result(
        name='side_costs',
        title='LiT decoding, GPPF lego memory and SIMT overhead',
        description='Side costs of the LiT decoder and GPPF, '
        'measured on the same machine in one run.',
        environment=collect_environment(dev),
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
        notes=[
            CUDA_MEMORY_NOTE if dev.type == 'cuda' else CPU_MEMORY_NOTE,
            'lego rows: forward + backward of the backbone only (sum of its '
            'outputs as the loss); plain ResNet = the network of one '
            'exported path',
            'SIMT rows: one-process group, so no data moves: the '
            'bookkeeping cost of the task average over DDP\'s rule',
        ])
