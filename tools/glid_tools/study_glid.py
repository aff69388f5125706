"""GLID studies of ``tools/study.py``: does GLID pre-training give a better
CamVid segmenter than random initialisation, and which pre-trained parts
matter (GLID Table 4)?

``glid-camvid``
    Pre-trains the nano GLID (visible-token encoder, Sec. 3.1) on the
    bundled unlabelled images (COCO128 + CamVid train + hymenoptera train,
    as the main job) at two budgets, the main job's and one 8x longer, then
    fine-tunes CamVid semantic segmentation from random / pre-trained
    (short) / pre-trained (long) initialisations, with all labelled train
    frames and with a fixed 25 % of them (the label-scarce regime of GLID
    Table 8 / supp. Table 4), ``seeds`` seeds per cell, evaluated on CamVid
    val by mmseg's ``IoUMetric`` through ``tools/test.py``.
``glid-table4``
    GLID Table 4 at the same budget: backbone / backbone + Bi-FPN / all
    pre-trained (long), and random, on the 25 % subset, same seeds. Runs
    it shares with ``glid-camvid`` (same work dir and preset) are reused.
``--dev`` (either study)
    Recipe selection without CamVid val: the long pre-training, then
    fine-tunings on CamVid train without its ``0001TP`` sequence, validated
    on that held-out sequence every ``val_interval`` iterations, for each
    candidate backbone learning rate. The presets' fine-tuning values were
    chosen from its output (docs/results.md says how).

Every run is a config written under ``<work-dir>/runs/<preset>/<run>/``
(inheriting the project's config, so a reader sees exactly what changed)
and trained / tested with ``tools/train.py`` / ``tools/test.py``.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from glid_tools.study import Step, fmt

PRETRAIN_CFG = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'
FINETUNE_CFG = 'configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'
#: the CamVid train sequence held out as the development split (62 of
#: 367 frames, 17 %): a whole sequence, so that no dev frame has a
#: near-duplicate neighbour in the frames trained on (CamVid val is
#: another sequence too)
DEV_SEQUENCE = '0001TP'

# Presets. 'cpu' fits 100 minutes on 2 cores; 'gpu' is sized for about an
# hour on one GPU (an estimate: no GPU has run it); 'tiny' is the test's.
# s_*: seconds per pre-training / fine-tuning iteration, per process start,
# per evaluation of CamVid val and per dev evaluation, for estimates only.
PRESETS: Dict[str, dict] = dict(
    cpu=dict(
        seeds=3,
        pretrain_short=400,  # the main job's budget
        pretrain_long=3200,  # 8x: the most the CPU budget holds
        pretrain_batch=16,
        # MAE's per-patch normalised target (docs/results.md: with plain
        # pixels the loss flattens at the mean-colour level)
        norm_pix=True,
        # dev choice (glid-camvid --dev, docs/results.md): 600 iterations
        # (the dev mIoU still rose at 600, the most the budget holds) and
        # the full backbone lr for both initialisations (the config's
        # x0.1 gave lower dev mIoU at 600 for both)
        finetune_iters=600,
        finetune_batch=8,
        lr=5e-4,
        # backbone lr multiplier per initialisation
        backbone_lr_mult=dict(random=1.0, pretrained=1.0),
        subset_fraction=0.25,
        dev=dict(iters=600, val_interval=150, backbone_lr_mults=[0.1, 1.0]),
        jobs=1,
        s_pretrain=0.25,
        s_finetune=0.37,
        s_start=20,
        s_test=25,
        s_dev_val=10),
    gpu=dict(
        seeds=5,
        pretrain_short=2000,
        pretrain_long=16000,
        pretrain_batch=64,
        norm_pix=True,
        finetune_iters=4000,
        finetune_batch=16,
        lr=5e-4,
        # the CPU dev choice; rerun --dev --preset gpu to choose at this
        # budget
        backbone_lr_mult=dict(random=1.0, pretrained=1.0),
        subset_fraction=0.25,
        dev=dict(iters=4000, val_interval=500, backbone_lr_mults=[0.1, 1.0]),
        jobs=1,
        # assumed, not measured: ~0.05 s per nano iteration on one GPU
        s_pretrain=0.06,
        s_finetune=0.05,
        s_start=30,
        s_test=20,
        s_dev_val=5),
    tiny=dict(
        seeds=2,
        val_frames=8,  # of CamVid's 101 val frames (tests only)
        pretrain_short=2,
        pretrain_long=16,
        pretrain_batch=4,
        norm_pix=True,
        finetune_iters=2,
        finetune_batch=2,
        lr=5e-4,
        backbone_lr_mult=dict(random=1.0, pretrained=0.1),
        subset_fraction=0.25,
        dev=dict(iters=2, val_interval=1, backbone_lr_mults=[0.1]),
        jobs=1,
        s_pretrain=0.3,
        s_finetune=0.4,
        s_start=15,
        s_test=20,
        s_dev_val=15),
)

#: initialisations: converter mode of the long / short pre-training
INITS = {
    'random': None,
    'short': ('short', 'all'),
    'long': ('long', 'all'),
    'long-backbone': ('long', 'backbone'),
    'long-backbone+neck': ('long', 'backbone+neck'),
}
INIT_LABELS = {
    'random': 'random init',
    'short': 'GLID pre-trained (short)',
    'long': 'GLID pre-trained (long)',
    'long-backbone': 'pre-trained backbone (long)',
    'long-backbone+neck': 'pre-trained backbone + Bi-FPN (long)',
}
#: (init, labels) cells of each study, in table order
CELLS = {
    'glid-camvid': [('random', 'all'), ('short', 'all'), ('long', 'all'),
                    ('random', 'subset'), ('long', 'subset')],
    'glid-table4': [('random', 'subset'), ('long-backbone', 'subset'),
                    ('long-backbone+neck', 'subset'), ('long', 'subset')],
}


def data_root(root: str) -> str:
    return os.environ.get('GLID_MM_DATA', osp.join(root, '..', 'shared',
                                                   'data'))


def train_frames(root: str) -> List[str]:
    """CamVid train frames in the order of mmseg's data list (sorted)."""
    folder = osp.join(data_root(root), 'camvid', 'images', 'train')
    if not osp.isdir(folder):
        raise FileNotFoundError(f'CamVid train images not found: {folder} '
                                '(set GLID_MM_DATA)')
    return sorted(f for f in os.listdir(folder) if f.endswith('.jpg'))


def subset_indices(n: int, fraction: float) -> List[int]:
    """``floor(fraction * n)`` indices spread evenly over ``0..n-1`` (every
    part of every sequence keeps its share); the same for every run."""
    if not 0 < fraction <= 1:
        raise ValueError(f'subset fraction must be in (0, 1], got {fraction}')
    k = max(1, int(fraction * n))
    return [i * n // k for i in range(k)]


def dev_split(frames: List[str]) -> Tuple[List[int], List[int]]:
    """(train indices, dev indices): the dev split is the whole
    ``DEV_SEQUENCE`` sequence."""
    dev = [i for i, f in enumerate(frames) if f.startswith(DEV_SEQUENCE)]
    if not dev:
        raise ValueError(f'no CamVid train frame starts with '
                         f'{DEV_SEQUENCE!r}: cannot make the dev split')
    train = [i for i in range(len(frames)) if i not in set(dev)]
    return train, dev


def _pretrain_config(root: str, p: dict, iters: int) -> str:
    return f"""# GLID nano pre-training of the study ({iters} iterations)
_base_ = [{osp.join(root, PRETRAIN_CFG)!r}]
model = dict(head=dict(norm_pix={p['norm_pix']!r}))
train_dataloader = dict(batch_size={p['pretrain_batch']})
train_cfg = dict(max_iters={iters})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end={min(10, iters - 1)}),
    dict(type='CosineAnnealingLR', by_epoch=False, begin={min(10, iters - 1)},
         end={iters}, eta_min=1e-5)
]
default_hooks = dict(
    logger=dict(interval={min(10, iters)}),
    checkpoint=dict(interval={max(iters // 4, 1)}, max_keep_ckpts=1))
randomness = dict(seed=0)
"""


def _finetune_config(root: str,
                     p: dict,
                     iters: int,
                     seed: int,
                     lr_mult: float,
                     load_from: Optional[str],
                     train_idx: Optional[List[int]],
                     dev_idx: Optional[List[int]] = None,
                     val_interval: Optional[int] = None) -> str:
    lines = [
        '# CamVid fine-tuning run of the study',
        f'_base_ = [{osp.join(root, FINETUNE_CFG)!r}]',
        f'load_from = {load_from!r}',
        f'randomness = dict(seed={seed})',
        f"train_cfg = dict(max_iters={iters}, "
        f"val_interval={val_interval or iters + 1})",
        "param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, "
        f"begin=0, end={iters}, by_epoch=False)]",
        f"default_hooks = dict(logger=dict(interval={min(50, iters)}), "
        f"checkpoint=dict(interval={iters}))",
        f"optim_wrapper = dict(optimizer=dict(lr={p['lr']!r}), paramwise_cfg="
        f"dict(custom_keys={{'backbone': dict(lr_mult={lr_mult!r})}}))",
        f"train_dataloader = dict(batch_size={p['finetune_batch']}, "
        f"dataset=dict(indices={train_idx!r}))",
    ]
    if dev_idx is not None:
        lines.append("val_dataloader = dict(dataset=dict(data_prefix=dict("
                     "img_path='images/train', seg_map_path='labels/train'), "
                     f"indices={dev_idx!r}))")
    elif p.get('val_frames'):  # the tests' preset: the first val frames
        for loader in ('val_dataloader', 'test_dataloader'):
            lines.append(f"{loader} = dict(dataset=dict("
                         f"indices={p['val_frames']}))")
    return '\n'.join(lines) + '\n'


def _pretrain_steps(root: str, p: dict, which: List[str]) -> List[Step]:
    steps = []
    for budget in which:
        iters = p[f'pretrain_{budget}']
        steps.append(
            Step(
                name=f'pretrain_{budget}',
                kind='train',
                args=[
                    'tools/train.py', '{run}/config.py', '--work-dir', '{run}'
                ],
                iters=iters,
                est_s=iters * p['s_pretrain'] + p['s_start'],
                config=_pretrain_config(root, p, iters),
                meta=dict(budget=budget, iters=iters)))
    return steps


def _convert_step(p: dict, init: str) -> Step:
    budget, mode = INITS[init]
    iters = p[f'pretrain_{budget}']
    return Step(
        name=f'init_{init}',
        kind='convert',
        args=[
            'tools/model_converters/glid_pretrain_to_finetune.py',
            f'{{runs}}/pretrain_{budget}/iter_{iters}.pth', '{run}/init.pth',
            '--config', FINETUNE_CFG, '--mode', mode
        ],
        deps=[f'pretrain_{budget}'],
        est_s=15,
        meta=dict(init=init, mode=mode, budget=budget))


def select_cells(cells: List[Tuple[str, str]],
                 only: Optional[List[str]]) -> List[Tuple[str, str]]:
    """The cells named in ``only`` (``'init/labels'``), all without."""
    if not only:
        return cells
    names = [f'{i}/{l}' for i, l in cells]
    unknown = [o for o in only if o not in names]
    if unknown:
        raise ValueError(f'unknown cells {unknown}; this study has {names}')
    return [c for c, n in zip(cells, names) if n in only]


def build_plan(study: str,
               root: str,
               preset: str,
               seeds: int,
               runs_dir: str,
               dev: bool = False,
               only: Optional[List[str]] = None) -> List[Step]:
    """The steps of ``study`` (``glid-camvid`` / ``glid-table4``); with
    ``dev``, the recipe-selection runs on the dev split instead; ``only``
    keeps the named cells (``'init/labels'``)."""
    p = PRESETS[preset]
    frames = train_frames(root)
    if dev:
        return _dev_plan(root, p, frames, runs_dir)
    cells = select_cells(CELLS[study], only)
    inits = sorted({i
                    for i, _ in cells if INITS[i] is not None},
                   key=list(INITS).index)
    budgets = sorted({INITS[i][0] for i in inits}, key=['short', 'long'].index)
    plan = _pretrain_steps(root, p, budgets)
    plan += [_convert_step(p, i) for i in inits]
    subset = subset_indices(len(frames), p['subset_fraction'])
    n = p['finetune_iters']
    for seed in range(seeds):  # seed-major: a cut-short study is balanced
        for init, labels in cells:
            ft = f'ft_{init}_{labels}_s{seed}'
            load = (None if INITS[init] is None else osp.join(
                runs_dir, f'init_{init}', 'init.pth'))
            mult = p['backbone_lr_mult']['random' if INITS[init] is
                                         None else 'pretrained']
            meta = dict(init=init, labels=labels, seed=seed)
            plan.append(
                Step(
                    name=ft,
                    kind='train',
                    args=[
                        'tools/train.py', '{run}/config.py', '--work-dir',
                        '{run}'
                    ],
                    deps=[] if load is None else [f'init_{init}'],
                    iters=n,
                    est_s=n * p['s_finetune'] + p['s_start'],
                    config=_finetune_config(
                        root, p, n, seed, mult, load,
                        subset if labels == 'subset' else None),
                    meta=meta))
            plan.append(
                Step(
                    name=f'test_{init}_{labels}_s{seed}',
                    kind='test',
                    args=[
                        'tools/test.py', f'{{runs}}/{ft}/config.py',
                        f'{{runs}}/{ft}/iter_{n}.pth', '--work-dir', '{run}'
                    ],
                    deps=[ft],
                    est_s=p['s_test'],
                    meta=meta))
    return plan


def _dev_plan(root: str, p: dict, frames: List[str],
              runs_dir: str) -> List[Step]:
    train_idx, dev_idx = dev_split(frames)
    d = p['dev']
    plan = _pretrain_steps(root, p, ['long']) + [_convert_step(p, 'long')]
    for init in ('random', 'long'):
        for mult in d['backbone_lr_mults']:
            load = (None if init == 'random' else osp.join(
                runs_dir, 'init_long', 'init.pth'))
            plan.append(
                Step(
                    name=f'dev_{init}_bbmult{mult:g}_s0',
                    kind='train',
                    args=[
                        'tools/train.py', '{run}/config.py', '--work-dir',
                        '{run}'
                    ],
                    deps=[] if load is None else ['init_long'],
                    iters=d['iters'],
                    est_s=(d['iters'] * p['s_finetune'] + p['s_start'] +
                           d['iters'] // d['val_interval'] * p['s_dev_val']),
                    config=_finetune_config(root, p, d['iters'], 0, mult, load,
                                            train_idx, dev_idx,
                                            d['val_interval']),
                    meta=dict(init=init, backbone_lr_mult=mult, seed=0)))
    return plan


def _regimes(p: dict, n_frames: int) -> Dict[str, str]:
    k = len(subset_indices(n_frames, p['subset_fraction']))
    return {
        'all': f'all {n_frames} frames',
        'subset': f'{k} frames ({100 * k / n_frames:.0f} %)'
    }


def report(study: str,
           root: str,
           preset: str,
           plan: List[Step],
           records: Dict[str, dict],
           out_dir: str,
           dev: bool = False) -> Tuple[str, dict]:
    """(markdown, json) of a finished GLID study; draws
    ``out_dir/study.png``."""
    from glid_tools.study_report import (loss_curve, markdown, planned_cells,
                                         plot, summarise, wall_times)
    p = PRESETS[preset]
    frames = train_frames(root)
    names = [s.name for s in plan]
    wall = wall_times(records, names)
    curves = {
        f'{s.meta["budget"]} ({s.meta["iters"]} it.)':
        loss_curve(records.get(s.name))
        for s in plan if s.name.startswith('pretrain_')
    }
    pre = {
        k: dict(first=c[min(c)], last=c[max(c)], iters=max(c))
        for k, c in curves.items() if c
    }
    if dev:
        return _dev_report(p, plan, records, out_dir, frames, curves, pre,
                           wall)
    regimes = _regimes(p, len(frames))
    summary = summarise(
        planned_cells(CELLS[study], plan),
        records,
        'mIoU',
        extra_metrics=('aAcc', 'mAcc'))
    plot(
        summary,
        INIT_LABELS,
        regimes,
        osp.join(out_dir, 'study.png'),
        curves=curves,
        curve_title='GLID pre-training loss (masked units, ' +
        ('per-patch normalised target)' if p['norm_pix'] else 'pixels)'),
        title=f'{study}: CamVid val mIoU, seeds (dots), mean +- std',
        # with the per-unit normalised target, predicting each masked
        # unit's own mean colour (zero) scores exactly 1
        curve_ref=(1.0, "each unit's mean colour") if p['norm_pix'] else None)
    subset = [
        frames[i] for i in subset_indices(len(frames), p['subset_fraction'])
    ]
    md = [
        markdown(summary, INIT_LABELS,
                 regimes), '', 'Pre-training (nano GLID, batch '
        f'{p["pretrain_batch"]}, norm_pix={p["norm_pix"]}): ' +
        '; '.join(f'{k}: loss {fmt(v["first"], 3)} (first logged) -> '
                  f'{fmt(v["last"], 3)}' for k, v in pre.items()), '',
        f'Fine-tuning: {p["finetune_iters"]} iterations, batch '
        f'{p["finetune_batch"]}, lr {p["lr"]:g}, backbone lr x'
        f'{p["backbone_lr_mult"]["random"]:g} (random init) / x'
        f'{p["backbone_lr_mult"]["pretrained"]:g} (pre-trained).', '',
        f'Wall time of the steps: {wall["total_s"] / 60:.1f} min (' +
        ', '.join(f'{k} {v / 60:.1f} min'
                  for k, v in wall['by_kind'].items()) + ').', '',
        f'The 25 % subset ({len(subset)} frames, every '
        f'{len(frames) / len(subset):.2f}th of the sorted train list): ' +
        ', '.join(subset)
    ]
    return '\n'.join(md), dict(
        study=study,
        preset=preset,
        settings=p,
        summary=summary,
        pretraining=pre,
        wall=wall,
        subset=subset)


def _dev_report(p, plan, records, out_dir, frames, curves, pre, wall):
    train_idx, dev_idx = dev_split(frames)
    runs = [s for s in plan if s.name.startswith('dev_')]
    steps = sorted({
        r['step']
        for s in runs
        for r in records.get(s.name, {}).get('val', [])
    })
    lines = [
        f'Dev split: CamVid train sequence {DEV_SEQUENCE} '
        f'({len(dev_idx)} frames) held out; fine-tuned on the other '
        f'{len(train_idx)} frames, seed 0. Dev mIoU by iteration:', '',
        '| init | backbone lr mult | ' + ' | '.join(f'it. {s}'
                                                    for s in steps) + ' |',
        '|---|---|' + '---|' * len(steps)
    ]
    table = {}
    for s in runs:
        vals = {
            r['step']: r['mIoU']
            for r in records.get(s.name, {}).get('val', []) if 'mIoU' in r
        }
        table[s.name] = dict(meta=s.meta, dev_mIoU=vals)
        lines.append(f'| {s.meta["init"]} | {s.meta["backbone_lr_mult"]:g} '
                     '| ' + ' | '.join(fmt(vals.get(t)) for t in steps) + ' |')
    # the rule: per init, the multiplier with the best final dev mIoU; then
    # the fewest iterations whose mean over those two runs is within 0.5 of
    # the best mean
    best = {}
    for init in ('random', 'long'):
        cands = [(v['dev_mIoU'].get(steps[-1], float('-inf')),
                  v['meta']['backbone_lr_mult']) for v in table.values()
                 if v['meta']['init'] == init]
        if cands:
            best[init] = max(cands)[1]
    chosen = [
        v for v in table.values()
        if best.get(v['meta']['init']) == v['meta']['backbone_lr_mult']
    ]
    means = {
        t: sum(v['dev_mIoU'].get(t, 0) for v in chosen) / max(len(chosen), 1)
        for t in steps
    }
    top = max(means.values()) if means else float('nan')
    iters = min((t for t in steps if means[t] >= top - 0.5), default=None)
    lines += [
        '', 'Rule: per initialisation the backbone lr multiplier with the '
        'best dev mIoU at the last iteration; then the fewest iterations '
        'whose mean dev mIoU over those runs is within 0.5 of the best.',
        f'Result: backbone lr x{best.get("random")} (random), '
        f'x{best.get("long")} (pre-trained); {iters} iterations '
        f'(preset: x{p["backbone_lr_mult"]["random"]:g} / '
        f'x{p["backbone_lr_mult"]["pretrained"]:g}, '
        f'{p["finetune_iters"]} iterations).', '', 'Pre-training: ' +
        '; '.join(f'{k}: loss {fmt(v["first"], 3)} -> {fmt(v["last"], 3)}'
                  for k, v in pre.items()),
        f'Wall time of the steps: {wall["total_s"] / 60:.1f} min.'
    ]
    _plot_dev(table, curves, osp.join(out_dir, 'study.png'))
    return '\n'.join(lines), dict(
        dev_sequence=DEV_SEQUENCE,
        dev_frames=len(dev_idx),
        runs=table,
        chosen=dict(backbone_lr_mult=best, iters=iters),
        pretraining=pre,
        wall=wall)


def _plot_dev(table, curves, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name, v in table.items():
        c = v['dev_mIoU']
        axes[0].plot(
            sorted(c), [c[t] for t in sorted(c)],
            marker='o',
            label=f'{v["meta"]["init"]}, backbone lr x'
            f'{v["meta"]["backbone_lr_mult"]:g}')
    axes[0].set_xlabel('fine-tuning iteration')
    axes[0].set_ylabel('dev mIoU')
    axes[0].legend(fontsize=8)
    axes[0].set_title('CamVid dev split (held-out train sequence)')
    for name, c in curves.items():
        if c:
            axes[1].plot(sorted(c), [c[t] for t in sorted(c)], label=name)
    axes[1].set_xlabel('iteration')
    axes[1].set_title('GLID pre-training loss')
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


__all__ = [
    'report', 'select_cells', 'PRESETS', 'CELLS', 'INITS', 'INIT_LABELS',
    'build_plan', 'subset_indices', 'dev_split', 'train_frames',
    'DEV_SEQUENCE', 'PRETRAIN_CFG', 'FINETUNE_CFG'
]
