"""GLID detection inference (300 queries) vs mmdet's DINO and DETR with a
Swin-B backbone: latency, images/s, peak memory and FLOPs per part. Thin
wrapper over
:func:`glid_tools.benchmark.inference.benchmark_inference`.

    # Swin-B, 800x1333 (mmdet's COCO test scale), bf16, batch 1
    python tools/benchmark/glid_detection_inference.py --device cuda
    # CPU smoke: nano models, 128x128
    python tools/benchmark/glid_detection_inference.py --arch nano \
        --device cpu --iters 2

Without ``--arch`` the size follows the device: ``base`` on CUDA, ``nano``
on the CPU (``python tools/benchmark/glid_detection_inference.py`` on a machine
without a GPU is the CPU smoke run). A progress bar (mmengine's
``ProgressBar``) shows the models done, elapsed time and ETA.

Writes ``<out-dir>/glid_detection_inference.{json,md}``.
"""
import sys

from glid_tools.benchmark.cli import inference_main
from glid_tools.benchmark.models import DETR, DINO, GLID_DETECTION


def main(argv=None) -> int:
    return inference_main(
        argv,
        __doc__.split('\n')[0],
        'detection',
        GLID_DETECTION,
        peers=dict(dino=DINO, detr=DETR),
        img_sizes=dict(base=(800, 1333), nano=(128, 128)))


if __name__ == '__main__':
    sys.exit(main())
