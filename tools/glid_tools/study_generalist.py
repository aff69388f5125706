"""Generalist study of ``tools/study.py`` (issue 23): does sharing one GLID
encoder-decoder among four tasks help or hurt each task?

``glid-generalist``
    For each seed: the nano GLID generalist
    (``configs/glid/glid-generalist_swin-nano_2xsimt-40i_coco128-camvid-nyu-
    cocokpt.py``: detection, semantic segmentation, depth and pose on one
    Swin + Bi-FPN + query decoder) trained by SIMT on 2 processes for ``N``
    iterations, and the four single-task nano configs it is made of, each
    trained alone on 1 process for ``N / 2`` iterations. Same total: the
    generalist runs ``2 N`` task batches (2 processes x ``N``), about
    ``N / 2`` per task with equal task weights, and the four single-task
    runs ``4 x N / 2``. Batch 2 everywhere; one recipe for all (the
    generalist config's AdamW lr 5e-4, 10 % linear warm-up, cosine decay,
    clip 0.1; its Bi-FPN BN momentum 0.01 / eps 1e-3 and decoder drop path
    0.1 in the single-task models too), random initialisation, the same
    seeds, and the
    generalist config's validation subsets with each toolbox's metric at
    the end of training. The recipe is fixed beforehand, not selected, so
    the study has no development split: the values are reported once.
"""
import functools
import os.path as osp
from typing import Dict, List, Optional, Tuple

from glid_tools.study import Step, fmt, paired_stats

GENERALIST = ('configs/glid/'
              'glid-generalist_swin-nano_2xsimt-40i_coco128-camvid-nyu-'
              'cocokpt.py')
#: task -> (single-task config, validation subset of the generalist)
TASKS = dict(
    det=('configs/glid/glid-det_swin-nano_1xb8-2k_coco128-320x240.py', 8),
    seg=('configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py', 4),
    depth=('configs/glid/glid-depth_swin-nano_1xb2-300i_nyu-96x128.py', 4),
    pose=('configs/glid/glid-pose_swin-nano_1xb4-60e_coco-samples-256x192.py',
          None))
#: task -> (metric key of the single-task run, higher is better)
METRICS = dict(
    det=('coco/bbox_mAP', True),
    seg=('mIoU', True),
    depth=('rmse', False),
    pose=('coco/AP', True))
EXTRA = dict(depth=['abs_rel', 'd1'], det=['coco/bbox_mAP_50'])

PRESETS: Dict[str, dict] = dict(
    # 600 iterations: about 40 min for 2 seeds on 2 CPU cores (0.8 s per
    # generalist iteration on 2 processes, about 0.45 s per single-task one)
    cpu=dict(
        seeds=2,
        iters=600,
        jobs=1,
        s_gen_iter=0.85,
        s_single_iter=0.45,
        s_start=40),
    gpu=dict(
        seeds=3,
        iters=4000,
        jobs=1,
        s_gen_iter=0.3,
        s_single_iter=0.15,
        s_start=60),
    tiny=dict(
        seeds=2,
        iters=4,
        jobs=1,
        s_gen_iter=1.6,
        s_single_iter=0.9,
        s_start=40),
)


@functools.lru_cache()
def generalist_optimizer(root: str) -> dict:
    """The generalist config's ``optim_wrapper`` (the one recipe of the
    study: read from the config, not copied)."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(root, GENERALIST)).optim_wrapper.to_dict()


def _schedule(root: str, iters: int) -> List[str]:
    """The one recipe of the study (the generalist config's optimizer),
    for a run of ``iters`` iterations."""
    warm = max(1, iters // 10)
    return [
        f'optim_wrapper = dict(_delete_=True, '
        f'**{generalist_optimizer(root)!r})',
        'param_scheduler = [dict(type="LinearLR", start_factor=0.1, '
        f'by_epoch=False, begin=0, end={warm}), '
        'dict(type="CosineAnnealingLR", by_epoch=False, '
        f'begin={warm}, end={iters})]',
        'default_hooks = dict(checkpoint=dict(_delete_=True, '
        f'type="CheckpointHook", by_epoch=False, interval={iters}), '
        'logger=dict(type="LoggerHook", interval=10, '
        'log_metric_by_epoch=False))',
        'log_processor = dict(by_epoch=False)',
    ]


def _generalist(root: str, p: dict, seed: int) -> Step:
    n = p['iters']
    cfg = [
        f'_base_ = [{osp.join(root, GENERALIST)!r}]',
        f'randomness = dict(seed={seed})',
        f'train_cfg = dict(max_iters={n}, val_interval={n})'
    ] + _schedule(root, n)
    return Step(
        name=f'gen_generalist_s{seed}',
        kind='train',
        args=[
            '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
            '2', 'tools/train.py', '{run}/config.py', '--work-dir', '{run}',
            '--launcher', 'pytorch'
        ],
        iters=n,
        est_s=n * p['s_gen_iter'] + p['s_start'],
        config='\n'.join(cfg) + '\n',
        meta=dict(model='generalist', seed=seed))


def _single(root: str, p: dict, task: str, seed: int) -> Step:
    n = p['iters'] // 2
    path, subset = TASKS[task]
    cfg = [
        f'_base_ = [{osp.join(root, path)!r}]',
        f'randomness = dict(seed={seed})',
        'train_dataloader = dict(batch_size=2)',
        # the generalist's shared-part settings: Bi-FPN BN momentum / eps
        # (CrossTaskSyncBN there; one process here), decoder drop path
        'model = dict(neck=dict(norm_cfg=dict(type="BN", momentum=0.01, '
        'eps=0.001)), decoder=dict(drop_path_rate=0.1))',
        f'train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", '
        f'max_iters={n}, val_interval={n})',
    ] + _schedule(root, n)
    if subset is not None:
        cfg.append(f'val_dataloader = dict(dataset=dict(indices={subset}))')
    return Step(
        name=f'gen_single_{task}_s{seed}',
        kind='train',
        args=['tools/train.py', '{run}/config.py', '--work-dir', '{run}'],
        iters=n,
        est_s=n * p['s_single_iter'] + p['s_start'],
        config='\n'.join(cfg) + '\n',
        meta=dict(model='single', task=task, seed=seed))


def build_plan(study: str,
               root: str,
               preset: str,
               seeds: int,
               runs_dir: str,
               dev: bool = False,
               only: Optional[List[str]] = None) -> List[Step]:
    """Per seed the generalist run and the four single-task runs
    (``only``: a subset of ``generalist`` and the task names)."""
    if dev:
        raise SystemExit('glid-generalist has no --dev: its recipe is '
                         'fixed beforehand (see the study docstring)')
    names = ['generalist'] + list(TASKS)
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise SystemExit(f'--only {unknown}: glid-generalist runs are '
                         f'{names}')
    keep = set(only or names)
    p = PRESETS[preset]
    plan: List[Step] = []
    for seed in range(seeds):
        if 'generalist' in keep:
            plan.append(_generalist(root, p, seed))
        plan += [_single(root, p, t, seed) for t in TASKS if t in keep]
    return plan


def final_metrics(record: dict) -> dict:
    """The last validation record of a training step."""
    vals = record.get('val') or []
    if not vals:
        raise KeyError(f'no validation record in {record.get("command")}')
    return vals[-1]


def collect(
        plan: List[Step],
        records: Dict[str, dict]) -> Dict[str, Dict[str, Dict[int, float]]]:
    """``{task: {'generalist' | 'single': {seed: value}}}`` of each
    task's main metric (and ``<task>:<extra metric>`` rows)."""
    out: Dict[str, Dict[str, Dict[int, float]]] = {}
    for step in plan:
        rec = records.get(step.name)
        if rec is None:
            continue
        vals = final_metrics(rec)
        seed = step.meta['seed']
        tasks = list(TASKS) if step.meta['model'] == 'generalist' else [
            step.meta['task']
        ]
        for task in tasks:
            prefix = f'{task}/' if step.meta['model'] == 'generalist' else ''
            for metric in [METRICS[task][0]] + EXTRA.get(task, []):
                key = prefix + metric
                if key not in vals:
                    raise KeyError(f'{step.name}: no {key!r} in its last '
                                   f'validation (has {sorted(vals)})')
                row = task if metric == METRICS[task][0] else \
                    f'{task}:{metric}'
                out.setdefault(row, {}).setdefault(step.meta['model'],
                                                   {})[seed] = vals[key]
    return out


def _mean_std(values: Dict[int, float]) -> Tuple[float, float]:
    from glid_tools.study import cell_stats
    st = cell_stats([values[s] for s in sorted(values)])
    return st['mean'], st['std']


def report(study: str,
           root: str,
           preset: str,
           plan: List[Step],
           records: Dict[str, dict],
           out_dir: str,
           dev: bool = False) -> Tuple[str, dict]:
    from glid_tools.study_report import wall_times
    p = PRESETS[preset]
    values = collect(plan, records)
    wall = wall_times(records, [s.name for s in plan])
    rows = [
        '| task (metric) | generalist, per seed | generalist mean +- sd '
        '| single-task, per seed | single-task mean +- sd | generalist - '
        'single, paired mean [95 % CI] | seeds where the generalist is '
        'better |', '|---|---|---|---|---|---|---|'
    ]
    data = dict(values={}, paired={}, preset=preset, iters=p['iters'])
    for row, by_model in values.items():
        task, _, extra = row.partition(':')
        metric = extra or METRICS[task][0]
        higher = METRICS[task][1] if not extra else extra != 'abs_rel'
        gen, single = by_model.get('generalist',
                                   {}), by_model.get('single', {})
        pair = paired_stats(gen, single)
        better = sum((d > 0) == higher and d != 0 for d in pair['diffs'])
        data['values'][row] = dict(
            generalist={
                str(k): v
                for k, v in gen.items()
            },
            single={
                str(k): v
                for k, v in single.items()
            })
        data['paired'][row] = pair
        gm, gs = _mean_std(gen) if gen else (float('nan'), float('nan'))
        sm, ss = _mean_std(single) if single else (float('nan'), float('nan'))
        seeds_g = ', '.join(fmt(gen[s], 3) for s in sorted(gen))
        seeds_s = ', '.join(fmt(single[s], 3) for s in sorted(single))
        lo, hi = pair['ci95']
        arrow = 'higher' if higher else 'lower'
        rows.append(
            f'| {task} ({metric}, {arrow} is better) | {seeds_g} | '
            f'{fmt(gm, 3)} +- {fmt(gs, 3)} | {seeds_s} | {fmt(sm, 3)} +- '
            f'{fmt(ss, 3)} | {fmt(pair["mean"], 3)} [{fmt(lo, 3)}, '
            f'{fmt(hi, 3)}] | {better} of {pair["n"]} |')
    n = p['iters']
    md = '\n'.join([
        f'Generalist: {n} SIMT iterations on 2 processes (2 x {n} task '
        f'batches of 2); each single-task run: {n // 2} iterations of '
        'batch 2 on 1 process (4 x '
        f'{n // 2} = {2 * n} batches in all). Random initialisation; one '
        'recipe for all (see tools/glid_tools/study_generalist.py). '
        'Validation at the end on the generalist config\'s subsets (det: 8 '
        'COCO128 images, which are also training images; seg: 4 CamVid '
        'val frames; depth: 4 NYU frames; pose: the COCO keypoint '
        'samples). Paired by seed.', ''
    ] + rows + [
        '', f'Wall time of the steps: {wall["total_s"] / 60:.1f} min.'
    ])
    data['wall'] = wall
    return md, data
