"""Train and evaluate each stock tiny config of ``configs/stack/``.

This is the end-to-end proof of the OpenMMLab stack on the bundled real data
(one stock model per toolbox, trained for a few iterations through
``tools/train.py`` and evaluated with the toolbox's own metric). The numbers
it prints are smoke-test numbers of models trained for 2 iterations from
random initialisation, not results.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

from glid_tools.progress import Progress


def read_scalars(work_dir: str) -> List[dict]:
    """All records of the newest ``vis_data/scalars.json`` in ``work_dir``."""
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}')
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


_NOT_METRICS = ('step', 'iter', 'epoch', 'lr', 'time', 'data_time', 'memory')


def eval_records(records: List[dict]) -> List[dict]:
    """The evaluation records (those without ``lr`` and losses: mmengine
    logs the train records with both)."""
    return [
        r for r in records
        if 'lr' not in r and not any(k.startswith('loss') for k in r)
    ]


def losses(records: List[dict]) -> Dict[int, float]:
    """``{iteration: total loss}`` of the train records."""
    return {r['step']: r['loss'] for r in records if 'loss' in r}


def last_metrics(records: List[dict]) -> Dict[str, float]:
    """The metrics of the last evaluation record (:func:`eval_records`)."""
    evals = eval_records(records)
    if not evals:
        return {}
    return {k: v for k, v in evals[-1].items() if k not in _NOT_METRICS}


def write_results(work_dir: str, table: str, results) -> None:
    """Write ``results.md`` (the table) and ``results.json``; print it."""
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print(table)


def run_config(config: str,
               work_dir: str,
               root: str,
               extra: Optional[List[str]] = None) -> dict:
    cmd = [
        sys.executable,
        osp.join(root, 'tools', 'train.py'), config, '--work-dir', work_dir
    ] + (
        extra or [])
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'training {config} failed:\n{proc.stderr[-3000:]}')
    records = read_scalars(work_dir)
    losses = [r['loss'] for r in records if 'loss' in r]
    return dict(
        config=osp.relpath(config, root),
        seconds=round(time.time() - t0, 1),
        iters=len(losses),
        loss=losses[-1] if losses else float('nan'),
        metrics=last_metrics(records))


def run_stack_demo(root: str,
                   work_dir: str,
                   progress: bool = True) -> List[dict]:
    """Train and evaluate every ``configs/stack`` config; ``progress``
    shows a progress bar over the configs with elapsed time and ETA
    (mmengine's ``ProgressBar``)."""
    configs = sorted(glob.glob(osp.join(root, 'configs', 'stack', '*.py')))
    if not configs:
        raise FileNotFoundError(f'no configs in {root}/configs/stack')
    results = []
    bar = Progress(len(configs), enabled=progress)
    for config in configs:
        name = osp.splitext(osp.basename(config))[0]
        bar.newline()
        print(f'[demo] training + evaluating {name} ...', flush=True)
        res = run_config(config, osp.join(work_dir, name), root)
        print(
            f'[demo]   {res["iters"]} iters in {res["seconds"]} s, '
            f'metrics {res["metrics"]}',
            flush=True)
        results.append(res)
        bar.update()
    bar.close()
    lines = [
        '| config | iters | last loss | metrics | seconds |',
        '|---|---|---|---|---|'
    ]
    for r in results:
        metrics = ', '.join(f'{k}={v:.4g}' for k, v in r['metrics'].items()
                            if isinstance(v, (int, float)))
        lines.append(f'| {r["config"]} | {r["iters"]} | {r["loss"]:.4g} | '
                     f'{metrics} | {r["seconds"]} |')
    write_results(work_dir, '\n'.join(lines), results)
    return results
