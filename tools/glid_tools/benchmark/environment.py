"""Machine, versions and accelerator peak recorded with every benchmark."""
import datetime
import importlib
import os
import platform
import subprocess
from typing import Dict, Optional, Tuple

import torch

# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s (multiply and add
# counted as 2 FLOPs), from NVIDIA's data sheets. Matched in order against
# torch.cuda.get_device_name(); the first pattern whose words all occur wins.
DENSE_BF16_PEAK_TFLOPS = (
    (('H100', 'PCIE'), 756.0),
    (('H100', 'NVL'), 835.0),
    (('H100', ), 989.0),  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    (('H200', 'NVL'), 835.0),
    (('H200', ), 989.0),  # SXM
    (('A100', ), 312.0),  # SXM4 and PCIe
)

_PACKAGES = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpose', 'mmpretrain',
             'glid_mm', 'numpy')


def dense_bf16_peak_tflops(device_name: str) -> Tuple[Optional[float], str]:
    """Dense bf16 peak of a GPU from its name.

    Returns:
        tuple: ``(tflops, note)``; ``tflops`` is None for an unknown GPU and
        ``note`` says so (the MFU column is then left empty).
    """
    words = device_name.upper().replace('-', ' ')
    for pattern, tflops in DENSE_BF16_PEAK_TFLOPS:
        if all(p in words for p in pattern):
            return tflops, (f"dense bf16 peak of '{device_name}': {tflops:g} "
                            'TFLOP/s')
    known = ', '.join(' '.join(p) for p, _ in DENSE_BF16_PEAK_TFLOPS)
    return None, (f"no dense bf16 peak known for '{device_name}' (known: "
                  f'{known}); MFU left empty')


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_gib() -> Optional[float]:
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str:
    try:
        return getattr(importlib.import_module(name), '__version__', '?')
    except Exception as e:  # a broken install is worth recording too
        return f'not importable ({type(e).__name__})'


def mmcv_ops_cuda() -> str:
    """The CUDA version mmcv's compiled ops were built with, or 'none'."""
    try:
        from mmcv.ops import get_compiling_cuda_version
        version = get_compiling_cuda_version()
    except Exception as e:
        return f'unknown ({type(e).__name__})'
    if version in ('not available', ''):
        return 'none (CPU ops only)'
    return str(version)


def _git_commit() -> Optional[str]:
    root = os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                                cwd=root,
                                capture_output=True,
                                text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(
            ['git', 'status', '--porcelain', '--untracked-files=no'],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ('+local changes' if dirty else '')) or None


def device_description(device: torch.device) -> str:
    """One line naming the device, e.g. ``'NVIDIA H100 80GB HBM3'`` or
    ``'cpu: <model>, 2 threads'``."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'cpu: {_cpu_model()}, {torch.get_num_threads()} torch threads'


def collect_environment(device: torch.device) -> Dict[str, object]:
    """Machine, software versions and (on CUDA) the GPU's bf16 peak."""
    device = torch.device(device)
    env = dict(
        date_utc=datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'),
        device=device_description(device),
        cpu=_cpu_model(),
        cpu_cores_usable=len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        memory_gib=_memory_total_gib(),
        os=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        mmcv_ops_cuda=mmcv_ops_cuda(),
        glid_mm_commit=_git_commit(),
    )
    for name in _PACKAGES:
        env[name] = _version(name)
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cudnn=torch.backends.cudnn.version(),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            gpu_dense_bf16_peak_tflops=dense_bf16_peak_tflops(props.name)[0])
    return env
