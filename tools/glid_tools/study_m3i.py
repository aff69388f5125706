"""M3I study of ``tools/study.py``: does M3I pre-training give a better
frozen encoder than M3I without mixing, or than a random one?

``m3i-hymenoptera``
    For each seed: pre-trains the tiny M3I ViT (mixed inputs, intra / inter
    dense targets, category target; M3I Table 3's full row) and its w/o-mix
    variant (encoder masking instead of mixing) on hymenoptera train +
    COCO128 images, converts both with
    ``tools/model_converters/m3i_to_backbone.py``, and trains the linear
    probe (frozen encoder, mean patch token, one linear layer) from each and
    from a random encoder with the same seed; top-1 on hymenoptera val by
    ``tools/test.py``.
``--dev``
    The pre-training budget chosen without hymenoptera val: every 5th
    hymenoptera train image is held out (from the pre-training's category
    target too) and the probe, trained on the rest, is validated on it, for
    each candidate budget (seed 0).
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from glid_tools.study import Step, fmt

PRETRAIN_CFG = {
    'm3i':
    'configs/m3i/m3i_vit-tiny-p16_1xb8-200i_hymenoptera-coco128-64px.py',
    'm3i-womix':
    'configs/m3i/m3i-womix_vit-tiny-p16_1xb8-200i_hymenoptera-coco128-64px.py',
}
PROBE_CFG = 'configs/m3i/m3i-probe_vit-tiny-p16_1xb32-30e_hymenoptera-64px.py'
DEV_EVERY = 5


def hymenoptera_train_count(root: str) -> int:
    """Images under hymenoptera/train/<class>/ (mmpretrain's CustomDataset
    indexes them 0..n-1)."""
    from glid_tools.study_glid import data_root
    folder = osp.join(data_root(root), 'hymenoptera', 'train')
    if not osp.isdir(folder):
        raise FileNotFoundError(f'hymenoptera train images not found: '
                                f'{folder} (set GLID_MM_DATA)')
    return sum(f.lower().endswith(('.jpg', '.jpeg', '.png'))
               for c in os.listdir(folder) if osp.isdir(osp.join(folder, c))
               for f in os.listdir(osp.join(folder, c)))


PRESETS: Dict[str, dict] = dict(
    cpu=dict(
        seeds=3,
        pretrain_iters=1000,  # dev choice (docs/results.md)
        probe_epochs=30,
        dev=dict(pretrain_iters=[200, 1000]),
        jobs=1,
        s_pretrain=0.13,
        s_start=15,
        s_probe_epoch=0.8,
        s_test=15),
    gpu=dict(
        seeds=5,
        pretrain_iters=20000,
        probe_epochs=90,
        dev=dict(pretrain_iters=[5000, 20000]),
        jobs=1,
        # assumed, not measured
        s_pretrain=0.03,
        s_start=30,
        s_probe_epoch=0.5,
        s_test=15),
    tiny=dict(
        seeds=2,
        pretrain_iters=2,
        probe_epochs=1,
        dev=dict(pretrain_iters=[2]),
        jobs=1,
        s_pretrain=0.2,
        s_start=15,
        s_probe_epoch=5,
        s_test=15),
)
ENCODERS = ['m3i', 'm3i-womix', 'random']
LABELS = {
    'm3i': 'M3I (mixed inputs, all targets)',
    'm3i-womix': 'M3I w/o mix',
    'random': 'random frozen encoder'
}
CELLS = [(e, 'all') for e in ENCODERS]


def dev_split(n: int) -> Tuple[List[int], List[int]]:
    """(train, dev) indices of hymenoptera train: every ``DEV_EVERY``-th
    image is dev (both classes keep their share)."""
    dev = list(range(0, n, DEV_EVERY))
    return [i for i in range(n) if i % DEV_EVERY], dev


def _pretrain(name: str, variant: str, p: dict, iters: int, seed: int,
              keep: Optional[List[int]]) -> Step:
    cfg = (f"_base_ = [{variant!r}]\n"
           f"train_cfg = dict(max_iters={iters})\n"
           "param_scheduler = [\n"
           "    dict(type='LinearLR', start_factor=0.1, by_epoch=False,"
           f" begin=0, end={min(10, iters - 1)}),\n"
           "    dict(type='CosineAnnealingLR', by_epoch=False, "
           f"begin={min(10, iters - 1)}, end={iters})\n]\n"
           f"default_hooks = dict(logger=dict(interval={min(10, iters)}), "
           f"checkpoint=dict(interval={iters}))\n"
           f"randomness = dict(seed={seed})\n")
    args = ['tools/train.py', '{run}/config.py', '--work-dir', '{run}']
    if keep is not None:  # the dev images leave the category target too
        args += [
            '--cfg-options',
            f'train_dataloader.dataset.datasets.0.indices={keep}'
        ]
    return Step(
        name=name,
        kind='train',
        args=args,
        iters=iters,
        est_s=iters * p['s_pretrain'] + p['s_start'],
        config=cfg,
        meta=dict(iters=iters, seed=seed))


def _probe(name: str,
           root: str,
           p: dict,
           seed: int,
           load: Optional[str],
           deps: List[str],
           meta: dict,
           dev: Optional[Tuple[List[int], List[int]]] = None) -> Step:
    e = p['probe_epochs']
    cfg = [
        f"_base_ = [{osp.join(root, PROBE_CFG)!r}]", f"load_from = {load!r}",
        f"randomness = dict(seed={seed})",
        f"train_cfg = dict(max_epochs={e}, val_interval={e})",
        "param_scheduler = [dict(type='CosineAnnealingLR', "
        f"by_epoch=True, begin=0, end={e})]",
        f"default_hooks = dict(checkpoint=dict(interval={e}))"
    ]
    if dev is not None:
        cfg += [
            f"train_dataloader = dict(dataset=dict(indices={dev[0]!r}))",
            "val_dataloader = dict(dataset=dict(data_prefix='train', "
            f"indices={dev[1]!r}))"
        ]
    return Step(
        name=name,
        kind='train',
        args=['tools/train.py', '{run}/config.py', '--work-dir', '{run}'],
        deps=deps,
        iters=0,
        est_s=e * p['s_probe_epoch'] + p['s_start'],
        config='\n'.join(cfg) + '\n',
        meta=meta)


def _convert(name: str, src_step: str, iters: int) -> Step:
    # no --check-config: the probe's ViT (out_type='avg_featmap') has a
    # final ``ln2`` that MAEViT lacks; it stays at LayerNorm's default
    # init (weight 1, bias 0; frozen), as when the probe loads the backbone
    return Step(
        name=name,
        kind='convert',
        args=[
            'tools/model_converters/m3i_to_backbone.py',
            f'{{runs}}/{src_step}/iter_{iters}.pth', '{run}/backbone.pth'
        ],
        deps=[src_step],
        est_s=12)


def build_plan(study: str,
               root: str,
               preset: str,
               seeds: int,
               runs_dir: str,
               dev: bool = False,
               only: Optional[List[str]] = None) -> List[Step]:
    """The steps of the study (``dev``: the budget selection; ``only``:
    the named cells, ``'m3i/all'`` ...)."""
    from glid_tools.study_glid import select_cells
    p = PRESETS[preset]
    if dev:
        return _dev_plan(root, p, runs_dir)
    n, e = p['pretrain_iters'], p['probe_epochs']
    encoders = [c[0] for c in select_cells(CELLS, only)]
    plan: List[Step] = []
    for seed in range(seeds):
        for enc in encoders:
            deps: List[str] = []
            load = None
            if enc != 'random':
                pre = f'm3i_pre_{enc}_{n}_s{seed}'
                conv = f'm3i_init_{enc}_{n}_s{seed}'
                plan += [
                    _pretrain(pre, osp.join(root, PRETRAIN_CFG[enc]), p, n,
                              seed, None),
                    _convert(conv, pre, n)
                ]
                deps, load = [conv], osp.join(runs_dir, conv, 'backbone.pth')
            meta = dict(init=enc, labels='all', seed=seed)
            probe = f'm3i_probe_{enc}_s{seed}'
            plan.append(_probe(probe, root, p, seed, load, deps, meta))
            plan.append(
                Step(
                    name=f'm3i_test_{enc}_s{seed}',
                    kind='test',
                    args=[
                        'tools/test.py', f'{{runs}}/{probe}/config.py',
                        f'{{runs}}/{probe}/epoch_{e}.pth', '--work-dir',
                        '{run}'
                    ],
                    deps=[probe],
                    est_s=p['s_test'],
                    meta=meta))
    return plan


def _dev_plan(root: str, p: dict, runs_dir: str) -> List[Step]:
    train, dev = dev_split(hymenoptera_train_count(root))
    plan: List[Step] = []
    for n in p['dev']['pretrain_iters']:
        for enc in ENCODERS[:2]:
            pre, conv = f'm3i_dev_pre_{enc}_{n}', f'm3i_dev_init_{enc}_{n}'
            plan += [
                _pretrain(pre, osp.join(root, PRETRAIN_CFG[enc]), p, n, 0,
                          train),
                _convert(conv, pre, n)
            ]
            plan.append(
                _probe(f'm3i_dev_probe_{enc}_{n}', root, p, 0,
                       osp.join(runs_dir, conv, 'backbone.pth'), [conv],
                       dict(init=enc, pretrain_iters=n, seed=0), (train, dev)))
    plan.append(
        _probe('m3i_dev_probe_random', root, p, 0, None, [],
               dict(init='random', pretrain_iters=0, seed=0), (train, dev)))
    return plan


def report(study: str,
           root: str,
           preset: str,
           plan: List[Step],
           records: Dict[str, dict],
           out_dir: str,
           dev: bool = False) -> Tuple[str, dict]:
    from glid_tools.study_report import (loss_curve, markdown, planned_cells,
                                         plot, summarise, wall_times)
    p = PRESETS[preset]
    wall = wall_times(records, [s.name for s in plan])
    if dev:
        rows, data = [], {}
        for s in plan:
            if '_probe_' not in s.name:
                continue
            vals = [
                r for r in records.get(s.name, {}).get('val', [])
                if 'accuracy/top1' in r
            ]
            acc = vals[-1]['accuracy/top1'] if vals else float('nan')
            data[s.name] = dict(meta=s.meta, dev_top1=acc)
            rows.append(f'| {LABELS[s.meta["init"]]} | '
                        f'{s.meta["pretrain_iters"]} | {fmt(acc)} |')
        train, dev_idx = dev_split(hymenoptera_train_count(root))
        md = '\n'.join([
            f'Dev split: every {DEV_EVERY}th hymenoptera train image '
            f'({len(dev_idx)} images) held out from the pre-training and '
            f'the probe; the probe trains on the other {len(train)}; '
            'seed 0.', '', '| encoder | pre-training iterations | dev '
            'top-1 |', '|---|---|---|'
        ] + rows + [
            '', f'Wall time of the steps: {wall["total_s"] / 60:.1f} '
            f'min. Preset budget: {p["pretrain_iters"]} iterations.'
        ])
        return md, dict(runs=data, wall=wall)
    summary = summarise(planned_cells(CELLS, plan), records, 'accuracy/top1')
    regimes = {'all': 'hymenoptera train labels'}
    curves = {}
    for enc in ENCODERS[:2]:
        rec = records.get(f'm3i_pre_{enc}_{p["pretrain_iters"]}_s0')
        if rec:
            curves[f'{LABELS[enc]}, seed 0'] = loss_curve(rec)
    plot(
        summary,
        LABELS,
        regimes,
        osp.join(out_dir, 'study.png'),
        curves=curves,
        curve_title='M3I pre-training loss (sum of targets)',
        title='hymenoptera val top-1 of the linear probe')
    md = '\n'.join([
        markdown(summary, LABELS, regimes), '',
        f'Pre-training: {p["pretrain_iters"]} iterations per encoder and '
        f'seed; probe: {p["probe_epochs"]} epochs.', '',
        f'Wall time of the steps: {wall["total_s"] / 60:.1f} min (' +
        ', '.join(f'{k} {v / 60:.1f} min'
                  for k, v in wall['by_kind'].items()) + ').'
    ])
    return md, dict(
        study=study, preset=preset, settings=p, summary=summary, wall=wall)


__all__ = ['PRESETS', 'CELLS', 'build_plan', 'report', 'dev_split']
