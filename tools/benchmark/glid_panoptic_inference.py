"""GLID panoptic inference vs mmdet's Mask2Former: latency, images/s, peak
memory and FLOPs per part (supp. Table 2). Thin wrapper
over :func:`glid_tools.benchmark.inference.benchmark_inference`.

    # the issue's setting: Swin-B, 640x640, bf16, batch 1
    python tools/benchmark/glid_panoptic_inference.py --device cuda
    python tools/benchmark/glid_panoptic_inference.py --device cuda \
        --dtype fp32 --batch-size 8
    # CPU smoke: nano models, 128x128
    python tools/benchmark/glid_panoptic_inference.py --arch nano \
        --device cpu --iters 2

Without ``--arch`` the size follows the device: ``base`` on CUDA, ``nano``
on the CPU (``python tools/benchmark/glid_panoptic_inference.py`` on a machine
without a GPU is the CPU smoke run). A progress bar (mmengine's
``ProgressBar``) shows the models done, elapsed time and ETA.

Writes ``<out-dir>/glid_panoptic_inference.{json,md}``.
"""
import sys

from glid_tools.benchmark.cli import inference_main
from glid_tools.benchmark.models import GLID_PANOPTIC, mask2former


def main(argv=None) -> int:
    # the ADE20K panoptic classes of GLID's config: 100 things + 50 stuff
    return inference_main(
        argv,
        __doc__.split('\n')[0],
        'panoptic',
        GLID_PANOPTIC,
        peers=dict(mask2former=mask2former(100, 50)),
        img_sizes=dict(base=(640, 640), nano=(128, 128)))


if __name__ == '__main__':
    sys.exit(main())
