"""Tables, JSON and the picture of a study (``tools/study.py``).

:func:`summarise` turns the ``done.json`` records of a plan's test steps
into per-seed values, mean +- standard deviation per cell and paired
differences against the baseline initialisation of the same label regime;
:func:`markdown` writes them as tables; :func:`plot` draws the metric per
cell with error bars (each seed a dot) beside the pre-training loss curves.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from glid_tools.study import cell_stats, fmt, paired_stats

Cell = Tuple[str, str]  # (init, labels)


def planned_cells(cells: Sequence[Cell], plan) -> List[Cell]:
    """The ``cells`` (in their order) that a test step of ``plan`` fills
    (``--only`` may have left some out)."""
    planned = {(s.meta['init'], s.meta['labels'])
               for s in plan if s.kind == 'test'}
    return [c for c in cells if c in planned]


def summarise(
    cells: Sequence[Cell],
    records: Dict[str, dict],
    metric: str,
    baseline: str = 'random',
    extra_metrics: Sequence[str] = ()) -> dict:
    """Values of ``metric`` per cell and seed from the test records
    (``meta`` holds init, labels, seed), their statistics, and paired
    differences of every other init against ``baseline`` with the same
    labels."""
    values: Dict[str, Dict[int, float]] = {}
    extras: Dict[str, Dict[str, Dict[int, float]]] = {}
    for rec in records.values():
        meta = rec.get('meta', {})
        if 'metrics' not in rec or (meta.get('init'),
                                    meta.get('labels')) not in cells:
            continue
        key = f'{meta["init"]}/{meta["labels"]}'
        if metric not in rec['metrics']:
            raise KeyError(f'metric {metric!r} not in the test record of '
                           f'{key} seed {meta["seed"]} (has '
                           f'{sorted(rec["metrics"])})')
        values.setdefault(key, {})[meta['seed']] = rec['metrics'][metric]
        for m in extra_metrics:
            if m in rec['metrics']:
                extras.setdefault(key, {}).setdefault(
                    m, {})[meta['seed']] = rec['metrics'][m]
    cells_out = {}
    for init, labels in cells:
        key = f'{init}/{labels}'
        vals = values.get(key, {})
        cells_out[key] = dict(
            init=init,
            labels=labels,
            per_seed={
                str(s): v
                for s, v in sorted(vals.items())
            },
            **cell_stats([vals[s] for s in sorted(vals)]),
            extra={
                m: cell_stats(list(v.values()))
                for m, v in extras.get(key, {}).items()
            })
    paired = {}
    for init, labels in cells:
        base = f'{baseline}/{labels}'
        key = f'{init}/{labels}'
        if init == baseline or base not in values or key not in values:
            continue
        paired[f'{key} - {base}'] = paired_stats(values[key], values[base])
    return dict(metric=metric, cells=cells_out, paired=paired)


def markdown(summary: dict,
             labels: Dict[str, str],
             regimes: Dict[str, str],
             digits: int = 2) -> str:
    """Per-seed table with mean +- std, and the paired differences."""
    metric = summary['metric']
    seeds = sorted(
        {int(s)
         for c in summary['cells'].values()
         for s in c['per_seed']})
    head = ('| initialisation | labels | ' + ' | '.join(f'seed {s}'
                                                        for s in seeds) +
            f' | mean +- std ({metric}) |')
    lines = [head, '|' + '---|' * (3 + len(seeds))]
    for c in summary['cells'].values():
        per = [fmt(c['per_seed'].get(str(s)), digits) for s in seeds]
        lines.append(f'| {labels.get(c["init"], c["init"])} | '
                     f'{regimes.get(c["labels"], c["labels"])} | ' +
                     ' | '.join(per) + f' | {fmt(c["mean"], digits)} +- '
                     f'{fmt(c["std"], digits)} |')
    if summary['paired']:
        lines += [
            '', f'Paired differences in {metric} (same seed = same '
            'fine-tuning data order; SE = std / sqrt(n)):', '',
            '| comparison | n | mean diff | std | SE | 95 % t-interval | '
            'seeds > 0 |', '|---|---|---|---|---|---|---|'
        ]
        for name, p in summary['paired'].items():
            a, b = name.split(' - ')
            pretty = ' - '.join(
                f'{labels.get(x.split("/")[0], x.split("/")[0])} '
                f'({regimes.get(x.split("/")[1], x.split("/")[1])})'
                for x in (a, b))
            lines.append(
                f'| {pretty} | {p["n"]} | {fmt(p["mean"], digits)} | '
                f'{fmt(p["std"], digits)} | {fmt(p["se"], digits)} | '
                f'[{fmt(p["ci95"][0], digits)}, {fmt(p["ci95"][1], digits)}]'
                f' | {p["positive"]} of {p["n"]} |')
    return '\n'.join(lines)


def plot(summary: dict,
         labels: Dict[str, str],
         regimes: Dict[str, str],
         out: str,
         curves: Optional[Dict[str, Dict[int, float]]] = None,
         curve_title: str = 'pre-training loss',
         title: str = '',
         curve_ref: Optional[Tuple[float, str]] = None) -> None:
    """Left: the metric per cell, each seed a dot, mean with +- std bars.
    Right (with ``curves``): the pre-training loss curves, with a dashed
    reference level ``curve_ref`` = (loss, label) when given."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cells = list(summary['cells'].values())
    ncols = 2 if curves else 1
    fig, axes = plt.subplots(
        1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    ax = axes[0, 0]
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    inits = list(dict.fromkeys(c['init'] for c in cells))
    for x, c in enumerate(cells):
        col = colours[inits.index(c['init']) % len(colours)]
        ys = list(c['per_seed'].values())
        ax.scatter([x] * len(ys), ys, s=14, color=col, alpha=0.5, zorder=2)
        if c['n']:
            ax.errorbar([x + 0.15], [c['mean']],
                        yerr=[0 if c['n'] < 2 else c['std']],
                        fmt='o',
                        color=col,
                        capsize=5,
                        zorder=3)
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels([
        f'{labels.get(c["init"], c["init"])}\n'
        f'{regimes.get(c["labels"], c["labels"])}' for c in cells
    ],
                       fontsize=7)
    ax.set_ylabel(summary['metric'])
    ax.set_title(
        title or f'{summary["metric"]}: seeds (dots), '
        'mean +- std',
        fontsize=9)
    ax.grid(axis='y', alpha=0.3)
    if curves:
        ax = axes[0, 1]
        for name, curve in curves.items():
            steps = sorted(curve)
            ax.plot(steps, [curve[s] for s in steps], label=name)
        if curve_ref is not None:
            ax.axhline(
                curve_ref[0],
                color='gray',
                linestyle='--',
                linewidth=1,
                label=curve_ref[1])
        ax.set_xlabel('iteration')
        ax.set_title(curve_title, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def loss_curve(record: Optional[dict]) -> Dict[int, float]:
    """``{iteration: loss}`` of a train step's done record."""
    if not record:
        return {}
    return {int(k): v for k, v in record.get('losses', {}).items()}


def wall_times(records: Dict[str, dict], names: List[str]) -> dict:
    """Wall seconds of the named steps, in all and by kind (from the
    records; a step reused from an earlier call counts its own time)."""
    by_kind: Dict[str, float] = {}
    for n in names:
        rec = records.get(n)
        if rec:
            kind = n[4:].split('_')[0] if n.startswith('m3i_') else \
                n.split('_')[0]
            by_kind[kind] = by_kind.get(kind, 0.0) + rec['wall_s']
    return dict(
        total_s=round(sum(by_kind.values()), 1),
        by_kind={
            k: round(v, 1)
            for k, v in by_kind.items()
        })


__all__ = [
    'planned_cells', 'summarise', 'markdown', 'plot', 'loss_curve',
    'wall_times'
]
