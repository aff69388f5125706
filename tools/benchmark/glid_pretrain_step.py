"""GLID pre-training step vs mmpretrain's SimMIM: images/s, peak memory,
FLOPs and MFU. Thin wrapper over
:func:`glid_tools.benchmark.pretrain_step.benchmark_pretrain_step`.

    # the issue's setting: Swin-B, 192 px, bf16, batch 128 per GPU
    python tools/benchmark/glid_pretrain_step.py --device cuda
    # CPU smoke: nano models, 64 px, batch 2
    python tools/benchmark/glid_pretrain_step.py --arch nano --device cpu \
        --iters 2

Without ``--arch`` the size follows the device: ``base`` on CUDA, ``nano``
on the CPU (``python tools/benchmark/glid_pretrain_step.py`` on a machine
without a GPU is the CPU smoke run). A progress bar (mmengine's
``ProgressBar``) shows the models done, elapsed time and ETA.

Writes ``<out-dir>/glid_pretrain_step.{json,md}``.
"""
import sys

from glid_tools.benchmark.cli import pretrain_step_main


def main(argv=None) -> int:
    return pretrain_step_main(
        argv,
        __doc__.split('\n')[0],
        batch_sizes=dict(base=128, nano=2),
        img_sizes=dict(base=192, nano=64))


if __name__ == '__main__':
    sys.exit(main())
