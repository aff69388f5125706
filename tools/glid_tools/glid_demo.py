"""The README's main job: GLID end to end on the bundled real data.

1. pre-train the nano GLID (Swin + BiFPN + query decoder) by masked image
   modelling on COCO128 + CamVid train + hymenoptera train images;
2. convert the pre-training checkpoint into a fine-tuning initialisation
   (only the pre-training head is dropped);
3. fine-tune the GLID semantic segmentation model (one new linear head,
   eq. 4) on CamVid twice with the same budget and seed: from the
   pre-trained initialisation and from random initialisation;
4. evaluate both on the CamVid val split with mmseg's ``IoUMetric``;
5. write a results table, the loss curves and a picture of masked input /
   reconstruction / original.

Everything runs through ``tools/train.py`` and the converter tool, exactly
as a user would run them (each in a process of its own, forked from a
server that imported the toolboxes once: :mod:`glid_tools.launch`).
While they run, a progress bar (mmengine's ``ProgressBar``) counts the
training iterations of all stages together, read from each run's log,
with elapsed time and ETA. The numbers are those
of minutes of CPU training at 64-160 px with a nano model: they show the
pipeline and the direction of the pre-training effect, not the paper's
results.
"""
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

from glid_tools import launch
from glid_tools.progress import Progress, last_train_iter
from glid_tools.stack_demo import (last_metrics, losses, read_scalars,
                                   write_results)

PRETRAIN_CFG = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'
FINETUNE_CFG = 'configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'


def _say(bar: Optional[Progress], msg: str) -> None:
    """Print a stage line below the progress bar."""
    if bar is not None:
        bar.newline()
    print(msg, flush=True)


def _run(cmd: List[str],
         root: str,
         log: str,
         bar: Optional[Progress] = None,
         iters: int = 0,
         poll_s: float = 1.0) -> None:
    """Run ``cmd`` with its output in ``log``; with ``bar``, move it by the
    training iterations the run logs (``iters`` in all)."""
    t0 = time.time()
    start = bar.completed if bar is not None else 0
    open(log, 'w').close()
    proc = launch.start(cmd, root, log)
    while True:
        try:
            proc.wait(timeout=poll_s)
            break
        except subprocess.TimeoutExpired:
            pass
        if bar is not None and iters:
            done = last_train_iter(log)
            if done:
                bar.update_to(start + min(done, iters))
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        if bar is not None:
            bar.newline()
        raise RuntimeError(f'command failed ({" ".join(cmd)}); log {log}:\n'
                           f'{tail}')
    if bar is not None and iters:
        bar.update_to(start + iters)
    _say(bar, f'[glid-demo]   done in {time.time() - t0:.0f} s (log: {log})')


def _train(root: str,
           config: str,
           work_dir: str,
           options: Optional[List[str]] = None,
           bar: Optional[Progress] = None,
           iters: int = 0) -> List[dict]:
    os.makedirs(work_dir, exist_ok=True)
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    if options:
        cmd += ['--cfg-options'] + options
    _run(cmd, root, osp.join(work_dir, 'train.log'), bar, iters)
    return read_scalars(work_dir)


def _plot_losses(curves: Dict[str, Dict[int, float]], out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    pre = curves.pop('pre-training (masked-patch MSE)')
    axes[0].plot(list(pre), list(pre.values()))
    axes[0].set_title('GLID pre-training (masked-patch MSE, eq. 2)')
    axes[0].set_xlabel('iteration')
    for name, curve in curves.items():
        axes[1].plot(list(curve), list(curve.values()), label=name)
    axes[1].set_title('CamVid fine-tuning (total loss)')
    axes[1].set_xlabel('iteration')
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def reconstruction_picture(root: str,
                           config: str,
                           checkpoint: str,
                           out: str,
                           num_images: int = 4,
                           seed: int = 0) -> None:
    """Masked input / reconstruction / original for a few val images."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(osp.join(root, config))
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    size = cfg.img_size
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=size, edge='short'),
        dict(type='CenterCrop', crop_size=size),
        dict(
            type='GLIDMaskGenerator',
            mask_patch_size=cfg.mask_patch_size,
            mask_ratio=0.75,
            strategy='random'),
        dict(type='PackInputs')
    ])
    data_root = cfg.data_root
    folders = [
        'hymenoptera/val/ants', 'hymenoptera/val/bees', 'camvid/images/val'
    ]
    files = []
    for folder in folders:
        names = sorted(os.listdir(osp.join(data_root, folder)))
        files += [osp.join(data_root, folder, n) for n in names[:2]]
    files = files[:num_images]
    np.random.seed(seed)
    batch = [pipeline(dict(img_path=f)) for f in files]
    data = model.data_preprocessor(
        dict(
            inputs=torch.stack([b['inputs'] for b in batch]),
            data_samples=[b['data_samples'] for b in batch]))
    inputs = data['inputs']
    if isinstance(inputs, (list, tuple)):  # SelfSupDataPreprocessor: views
        inputs = inputs[0]
    mask = torch.stack([ds.mask for ds in data['data_samples']])
    res = model.reconstruct(inputs, mask)
    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(1, 3, 1, 1)

    def to_img(x):
        return ((x * std + mean).clamp(0, 255) / 255).permute(0, 2, 3,
                                                              1).numpy()

    original = to_img(inputs)
    masked = to_img(inputs * (1 - res['pixel_mask']))
    recon = to_img(res['pred'])
    fig, axes = plt.subplots(
        len(files), 3, figsize=(6, 2 * len(files)), squeeze=False)
    for i in range(len(files)):
        for j, (title, img) in enumerate([('masked input (75 %)', masked),
                                          ('reconstruction', recon),
                                          ('original', original)]):
            axes[i, j].imshow(img[i])
            axes[i, j].axis('off')
            if i == 0:
                axes[i, j].set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


# GLID Table 4: which pre-trained parts initialise the fine-tuning model
# (converter mode, or None for a random initialisation)
TABLE4_INITS = [('random init', None), ('backbone', 'backbone'),
                ('backbone + BiFPN', 'backbone+neck'),
                ('pre-trained init', 'all')]


def run_glid_demo(root: str,
                  work_dir: str,
                  pretrain_iters: int = 400,
                  finetune_iters: int = 800,
                  table4: bool = False,
                  progress: bool = True,
                  val_frames: Optional[int] = None) -> dict:
    """Run the demo; with ``table4`` fine-tune from the four
    initialisations of GLID Table 4 (random, backbone, backbone + BiFPN,
    all pre-trained weights) instead of two (all, random). ``progress``
    shows a progress bar over all training iterations with elapsed time
    and ETA (mmengine's ``ProgressBar``). ``val_frames``: evaluate on the
    first N CamVid val frames only (a quick check; default all 101)."""
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    pre_dir = osp.join(work_dir, 'pretrain')
    inits = TABLE4_INITS if table4 else [TABLE4_INITS[-1], TABLE4_INITS[0]]
    print(
        f'[glid-demo] 1/4 pre-training the nano GLID for {pretrain_iters} '
        'iterations on the bundled images ...',
        flush=True)
    # every training iteration of the demo (the ETA assumes a fine-tuning
    # iteration costs what a pre-training one does; conversion, evaluation
    # and start-up are not counted)
    bar = Progress(
        pretrain_iters + finetune_iters * len(inits), enabled=progress)
    pre_records = _train(
        root,
        PRETRAIN_CFG,
        pre_dir,
        [
            f'train_cfg.max_iters={pretrain_iters}',
            # the cosine decay ends with training (it starts after the 10-step
            # warm-up, and mmengine needs end > begin)
            f'param_scheduler.1.end={max(pretrain_iters, 11)}',
            f'default_hooks.checkpoint.interval={pretrain_iters}',
            f'default_hooks.logger.interval={min(10, pretrain_iters)}'
        ],
        bar,
        pretrain_iters)
    pre_ckpt = osp.join(pre_dir, f'iter_{pretrain_iters}.pth')

    _say(bar, '[glid-demo] 2/4 converting the pre-training checkpoint ...')
    init_ckpts = {}
    for name, mode in inits:
        if mode is None:
            continue
        suffix = '' if mode == 'all' else '_' + mode.replace('+', '_')
        init_ckpts[name] = osp.join(work_dir,
                                    f'glid_nano_finetune_init{suffix}.pth')
        _run([
            sys.executable,
            'tools/model_converters/glid_pretrain_to_finetune.py', pre_ckpt,
            init_ckpts[name], '--config', FINETUNE_CFG, '--mode', mode
        ], root, osp.join(work_dir, f'convert{suffix}.log'), bar)

    ft_options = [
        f'train_cfg.max_iters={finetune_iters}',
        f'train_cfg.val_interval={finetune_iters}',
        f'default_hooks.checkpoint.interval={finetune_iters}',
        f'param_scheduler.0.end={finetune_iters}', 'randomness.seed=0',
        f'default_hooks.logger.interval={min(10, finetune_iters)}'
    ] + ([f'val_dataloader.dataset.indices={val_frames}']
         if val_frames else [])
    runs = {}
    for name, mode in inits:
        extra = [] if mode is None else [f'load_from={init_ckpts[name]}']
        _say(
            bar, f'[glid-demo] 3/4 fine-tuning on CamVid ({name}, '
            f'{finetune_iters} iterations) ...')
        tag = 'finetune_' + ('random' if mode is None else mode.replace(
            '+', '_'))
        runs[name] = _train(root, FINETUNE_CFG, osp.join(work_dir, tag),
                            ft_options + extra, bar, finetune_iters)

    bar.close()
    print('[glid-demo] 4/4 writing the results ...', flush=True)
    pre_loss = losses(pre_records)
    steps = sorted(pre_loss)
    results = dict(
        pretrain=dict(
            iters=pretrain_iters,
            first_logged_loss=pre_loss[steps[0]],
            last_logged_loss=pre_loss[steps[-1]]),
        finetune={
            name:
            dict(
                iters=finetune_iters,
                val_frames=val_frames or 'all',
                last_loss=losses(rec)[max(losses(rec))],
                metrics=last_metrics(rec))
            for name, rec in runs.items()
        })
    curves = {'pre-training (masked-patch MSE)': pre_loss}
    curves.update({k: losses(v) for k, v in runs.items()})
    _plot_losses(curves, osp.join(work_dir, 'loss_curves.png'))
    reconstruction_picture(root, PRETRAIN_CFG, pre_ckpt,
                           osp.join(work_dir, 'reconstruction.png'))
    lines = [
        '| stage | init | iterations | last loss | CamVid val aAcc | mIoU |'
        if not val_frames else
        f'| stage | init | iterations | last loss | aAcc, first {val_frames} '
        'CamVid val frames | mIoU |', '|---|---|---|---|---|---|',
        f'| pre-training (MSE, eq. 2) | random | {pretrain_iters} | '
        f'{results["pretrain"]["last_logged_loss"]:.4f} (first logged '
        f'{results["pretrain"]["first_logged_loss"]:.4f}) | - | - |'
    ]
    for name, res in results['finetune'].items():
        m = res['metrics']
        lines.append(f'| CamVid semantic fine-tuning | {name} | '
                     f'{res["iters"]} | {res["last_loss"]:.3f} | '
                     f'{m.get("aAcc", float("nan")):.2f} | '
                     f'{m.get("mIoU", float("nan")):.2f} |')
    lines += [
        '', 'One seed (0) per row: a difference of about a point is within '
        'seed noise at this budget. For several seeds, paired differences '
        'and error bars run `python tools/study.py glid-camvid` '
        '(docs/results.md, "Does GLID pre-training help?").'
    ]
    results['note'] = ('one seed; see tools/study.py glid-camvid for the '
                       'multi-seed study')
    write_results(work_dir, '\n'.join(lines), results)
    print(
        f'[glid-demo] wrote {work_dir}/results.md, results.json, '
        'loss_curves.png, reconstruction.png',
        flush=True)
    return results
