"""M3I pre-training step vs mmpretrain's MAE ViT-B: images/s, peak memory,
FLOPs and MFU. The same machinery as glid_pretrain_step.py; each
model's batch comes from its own config's training pipeline (M3I: two views
with crop boxes and a category label; MAE: one crop, masking inside the
model) on random images.

    # the issue's setting: ViT-B/16, 224 px, bf16
    python tools/benchmark/m3i_pretrain_step.py --device cuda
    # CPU smoke: the tiny M3I encoder (and MAE shrunk to it), 64 px
    python tools/benchmark/m3i_pretrain_step.py --arch nano --device cpu \
        --iters 2

Without ``--arch`` the size follows the device: ``base`` on CUDA, ``nano``
on the CPU (``python tools/benchmark/m3i_pretrain_step.py`` on a machine
without a GPU is the CPU smoke run). A progress bar (mmengine's
``ProgressBar``) shows the models done, elapsed time and ETA.

Writes ``<out-dir>/m3i_pretrain_step.{json,md}``.
"""
import sys

from glid_tools.benchmark.cli import pretrain_step_main
from glid_tools.benchmark.models import M3I_PRETRAIN, MAE


def main(argv=None) -> int:
    return pretrain_step_main(
        argv,
        __doc__.split('\n')[0],
        batch_sizes=dict(base=64, nano=2),
        img_sizes=dict(base=224, nano=64),
        models=(M3I_PRETRAIN, MAE),
        name='m3i_pretrain_step',
        title='M3I pre-training step vs MAE',
        description='One optimisation step of pre-training, M3I '
        '(configs/m3i, two mixed views, momentum-encoder targets) vs '
        "mmpretrain's MAE, same device, precision, batch and image size.")


if __name__ == '__main__':
    sys.exit(main())
