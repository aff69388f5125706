"""Timing and peak memory shared by every benchmark of ``tools/benchmark/``.

Timing (:func:`time_fn`): ``warmup`` untimed calls (allocator growth, cuDNN
autotuning, lazy initialisation), then ``iters`` timed calls, each bracketed
by ``torch.cuda.synchronize`` on CUDA so the wall-clock time covers the
kernels and not only their launch. The mean, the median and the minimum of
the per-call seconds are returned.

Peak memory (:func:`peak_memory`), one extra call of the function after the
timed ones:

- CUDA: ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``, i.e. the peak of the bytes held by tensors
  through the caching allocator during the call, model weights, gradients
  and optimizer state included (everything allocated on the device). The
  allocator's reserved-but-free cache is not counted.
- CPU (Linux): the growth of the process's peak resident set size over the
  call: ``VmHWM`` of ``/proc/self/status`` is reset to the current RSS by
  writing ``5`` to ``/proc/self/clear_refs`` before the call, and
  ``VmHWM - VmRSS(before)`` is read after it. Memory that was resident
  before the call (weights, earlier allocations) is *not* counted, so on CPU
  the number is the extra memory the call needed (activations, gradients
  allocated for the first time, workspaces). glibc keeps freed blocks for
  reuse, which would hide them: before the call, garbage is collected and
  ``malloc_trim(0)`` hands the free heap pages back (re-using them faults
  them in again, which counts), and for the call the mmap threshold is
  fixed at 4 KiB with ``mallopt`` so every tensor of 4 KiB or
  more is mapped and unmapped on its own, and set to 32 MiB (glibc's
  largest dynamic value) afterwards. Not available elsewhere (``None`` with
  a note).
"""
import ctypes
import gc
import os
import statistics
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_CALL_MMAP_THRESHOLD = 4096  # bytes; every allocation above is mapped
_PROC_STATUS = '/proc/self/status'
_PROC_CLEAR_REFS = '/proc/self/clear_refs'


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], object],
            device: torch.device,
            warmup: int = 1,
            iters: int = 5) -> Dict[str, float]:
    """Seconds per call of ``fn`` after ``warmup`` untimed calls.

    Args:
        fn: The work to time (one training step, one inference batch).
        device: Where ``fn`` runs; CUDA work is synchronised before each
            clock read.
        warmup: Untimed calls first. Defaults to 1.
        iters: Timed calls. Defaults to 5.

    Returns:
        dict: ``mean_s``, ``median_s``, ``min_s`` (per call) and ``iters``.
    """
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f'warmup must be an int >= 0, got {warmup!r}')
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f'iters must be an int >= 1, got {iters!r}')
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return dict(
        mean_s=statistics.fmean(times),
        median_s=statistics.median(times),
        min_s=min(times),
        iters=iters)


def _status_bytes(key: str) -> int:
    with open(_PROC_STATUS) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024  # reported in kB
    raise KeyError(f'{key} not in {_PROC_STATUS}')


def _libc() -> Optional[ctypes.CDLL]:
    try:
        return ctypes.CDLL('libc.so.6')
    except OSError:
        return None


def cpu_peak_memory_supported() -> Tuple[bool, str]:
    """Whether :func:`peak_memory` can measure on CPU here, and why not."""
    if not os.path.exists(_PROC_CLEAR_REFS):
        return False, f'{_PROC_CLEAR_REFS} missing (not Linux)'
    if _libc() is None:
        return False, 'glibc (libc.so.6) not found'
    try:
        with open(_PROC_CLEAR_REFS, 'w') as f:
            f.write('5')
        _status_bytes('VmHWM')
    except (OSError, KeyError) as e:
        return False, f'cannot reset the peak RSS: {e}'
    return True, ''


CPU_MEMORY_NOTE = (
    'CPU peak memory = growth of the peak resident set size over one call '
    '(VmHWM reset through /proc/self/clear_refs after malloc_trim; glibc '
    'mmap threshold 4 KiB during the call so freed tensors leave the '
    'process); memory '
    'resident before the call (weights) is not counted')
CUDA_MEMORY_NOTE = (
    'CUDA peak memory = torch.cuda.max_memory_allocated over one call '
    '(tensors on the device: weights, activations, gradients, optimizer '
    'state; the allocator cache is not counted)')


def peak_memory(fn: Callable[[], object],
                device: torch.device) -> Optional[int]:
    """Peak bytes of one call of ``fn`` (see the module docstring).

    Returns ``None`` where no measurement exists (CPU off Linux).
    """
    device = torch.device(device)
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    if device.type != 'cpu' or not cpu_peak_memory_supported()[0]:
        return None
    libc = _libc()
    gc.collect()
    libc.malloc_trim(0)  # free heap pages leave the RSS (re-use re-faults)
    libc.mallopt(_M_MMAP_THRESHOLD, _CALL_MMAP_THRESHOLD)
    try:
        before = _status_bytes('VmRSS')
        with open(_PROC_CLEAR_REFS, 'w') as f:
            f.write('5')
        fn()
        peak = _status_bytes('VmHWM')
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    return max(0, peak - before)


def _part_owner(model: torch.nn.Module,
                parts: Dict[str, Sequence[str]]) -> Dict[str, str]:
    """module name -> the part whose listed module is its closest
    ancestor (or itself)."""
    owner = {}
    for name, _ in model.named_modules():
        best = ''
        for part, mods in parts.items():
            for mod in mods:
                if (name == mod or
                        name.startswith(mod + '.')) and len(mod) > len(best):
                    best, owner[name] = mod, part
    return owner


def part_times(model: torch.nn.Module,
               fn: Callable[[], object],
               parts: Dict[str, Sequence[str]],
               device: torch.device,
               iters: int = 1) -> Dict[str, float]:
    """Seconds per call of ``fn`` spent in each part of ``model``.

    Every module of a part gets forward pre/post hooks; the clock is read
    (after a CUDA synchronize, so a part's kernels are charged to it) only
    where execution moves from one part to another, so a part's time is
    exclusive of the parts nested in it (as for FLOPs: e.g. Mask2Former's
    transformer decoder inside its head, whose layers mmdet calls one by
    one). The synchronisation removes the overlap between parts, so the
    parts can sum to a little more than the plain latency. ``rest`` is
    everything else: data preprocessing, glue and post-processing.

    Args:
        parts: ``part -> module names`` (see
            :func:`glid_tools.benchmark.flops.count_flops`).
        iters: Calls to average over.
    """
    from glid_tools.benchmark.flops import _calls_through_call
    device = torch.device(device)
    owner = _part_owner(model, parts)
    spent = {part: 0.0 for part in parts}
    stack = []  # [part, depth, start] of the parts being run, innermost last

    def now() -> float:
        synchronize(device)
        return time.perf_counter()

    def pre(_m, _args, _part):
        if stack and stack[-1][0] == _part:
            stack[-1][1] += 1
            return
        t = now()
        if stack:  # pause the enclosing part
            spent[stack[-1][0]] += t - stack[-1][2]
        stack.append([_part, 1, t])

    def post(_m, _args, _out, _part):
        top = stack[-1]
        top[1] -= 1
        if top[1] == 0:
            t = now()
            spent[top[0]] += t - top[2]
            stack.pop()
            if stack:  # resume the enclosing part
                stack[-1][2] = t

    handles = []
    for name, module in model.named_modules():
        if name in owner:
            part = owner[name]
            handles += [
                module.register_forward_pre_hook(
                    lambda m, a, _p=part: pre(m, a, _p)),
                module.register_forward_hook(
                    lambda m, a, o, _p=part: post(m, a, o, _p))
            ]
    try:
        with _calls_through_call(model,
                                 [n for mods in parts.values() for n in mods]):
            start = now()
            for _ in range(iters):
                fn()
            total = now() - start
    finally:
        for handle in handles:
            handle.remove()
    out = {part: sec / iters for part, sec in spent.items()}
    out['rest'] = (total - sum(spent.values())) / iters
    return out


DTYPES = dict(fp32=None, bf16=torch.bfloat16, fp16=torch.float16)


def autocast(device: torch.device, dtype: str):
    """The autocast context for a benchmark precision.

    Args:
        device: The model's device.
        dtype: ``'fp32'`` (autocast off), ``'bf16'`` (torch.autocast with
            bfloat16, as mmengine's ``AmpOptimWrapper(dtype='bfloat16')``
            sets for training) or ``'fp16'`` (float16 autocast; only the
            fallback for a peer without bf16 kernels).
    """
    if dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got '
                         f'{dtype!r}')
    device = torch.device(device)
    return torch.autocast(
        device_type=device.type,
        dtype=DTYPES[dtype] or torch.bfloat16,
        enabled=dtype != 'fp32')
