"""Plots of GPPF's lego unit selection from a training log (Fig. 3/10/11).

:class:`GPPFSelectionLoggerHook` writes each task's selection probabilities
``p_l^t[k]`` (Sec. 3.2, eq. 1) as scalars ``gppf/<task>/layer<l>/unit<k>``
into mmengine's ``<work_dir>/<timestamp>/vis_data/scalars.json`` (one JSON
object per line, with its ``step``). This module reads them back and draws

- the final selection of every task as heat maps, one panel per task,
  rows = lego layers, columns = units (Fig. 3 / Fig. 10);
- the selection probability of every unit over the iterations, one panel
  per lego layer, one colour per task (Fig. 11, App. B).

Only matplotlib's object-oriented API with the Agg canvas is used, so
importing or calling it never changes the process's pyplot backend.
``tools/analysis/gppf_plot_selection.py`` is the command-line wrapper.
"""
import glob
import json
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

#: ``gppf/<task>/layer<l>/unit<k>`` as written by GPPFSelectionLoggerHook.
SELECTION_PATTERN = re.compile(
    r'^gppf/(?P<task>[A-Za-z_]\w*)/layer(?P<layer>\d+)/unit(?P<unit>\d+)$')
HEATMAP_FILE = 'gppf_selection_heatmap.png'
CURVES_FILE = 'gppf_selection_curves.png'


@dataclass
class SelectionHistory:
    """Selection probabilities read from one ``scalars.json``.

    Attributes:
        source (str): The file they were read from.
        steps (np.ndarray): ``[S]`` logged iterations, increasing (0 = before
            training).
        probs (dict[str, np.ndarray]): Task -> ``[S, L, N]`` probabilities
            ``p_l^t[k]`` (NaN where a step did not log that task); tasks in
            the order the hook logged them.
    """

    source: str
    steps: np.ndarray
    probs: Dict[str, np.ndarray]

    @property
    def tasks(self) -> List[str]:
        return list(self.probs)

    @property
    def num_layers(self) -> int:
        """Lego layers ``L``."""
        return next(iter(self.probs.values())).shape[1]

    @property
    def num_units(self) -> int:
        """Units per layer ``N``."""
        return next(iter(self.probs.values())).shape[2]

    def final(self, task: str):
        """``(step, [L, N])``: the last step that logged ``task`` fully."""
        probs = self.probs[task]
        logged = np.flatnonzero(~np.isnan(probs).any(axis=(1, 2)))
        if logged.size == 0:
            raise ValueError(f'task {task!r} has no complete selection in '
                             f'{self.source}')
        return int(self.steps[logged[-1]]), probs[logged[-1]]


def _read_records(scalars_file: str) -> Dict[int, Dict[str, float]]:
    """``step -> {key: value}`` of the gppf scalars (later lines win)."""
    records: Dict[int, Dict[str, float]] = {}
    with open(scalars_file) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # blank or cut-off line (e.g. a killed run)
            if not isinstance(record, dict):
                continue
            values = {
                key: value
                for key, value in record.items()
                if SELECTION_PATTERN.match(key)
            }
            if not values:
                continue
            if 'step' not in record:
                raise ValueError(f'{scalars_file}: a line with gppf/ '
                                 f'scalars has no "step"')
            records.setdefault(int(record['step']), {}).update(values)
    return records


def _no_scalars_message(files: List[str]) -> str:
    return (f'no GPPF selection scalars (gppf/<task>/layer<l>/unit<k>) in '
            f'{", ".join(files)}; train with dict(type='
            f'"GPPFSelectionLoggerHook") in custom_hooks and a '
            f'LocalVisBackend visualizer')


def find_scalars_file(path: str) -> str:
    """The ``scalars.json`` to read for ``path``.

    ``path`` is a ``scalars.json`` file or a work dir: then the newest
    ``**/vis_data/scalars.json`` below it (or ``path/scalars.json``) that
    holds gppf scalars, as mmengine starts a new timestamped folder for
    each run in the same work dir.

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no scalars.json.
        ValueError: no candidate file holds gppf scalars (names them).
    """
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'no such work dir or scalars file: {path}')
    files = set(
        glob.glob(osp.join(path, '**', 'scalars.json'), recursive=True))
    if not files:
        raise FileNotFoundError(
            f'no scalars.json under {path} (mmengine writes '
            f'<work_dir>/<timestamp>/vis_data/scalars.json)')
    files = sorted(files, key=lambda f: (osp.getmtime(f), f), reverse=True)
    for candidate in files:
        if _read_records(candidate):
            return candidate
    raise ValueError(_no_scalars_message(files))


def load_selection(path: str) -> SelectionHistory:
    """Read the selection history from a work dir or a ``scalars.json``.

    Raises:
        FileNotFoundError: see :func:`find_scalars_file`.
        ValueError: the file has no gppf scalars (the message names it).
    """
    scalars_file = find_scalars_file(path)
    records = _read_records(scalars_file)
    if not records:
        raise ValueError(_no_scalars_message([scalars_file]))
    tasks: List[str] = []
    num_layers = num_units = 0
    for values in records.values():
        for key in values:
            match = SELECTION_PATTERN.match(key)
            if match['task'] not in tasks:
                tasks.append(match['task'])
            num_layers = max(num_layers, int(match['layer']) + 1)
            num_units = max(num_units, int(match['unit']) + 1)
    steps = np.array(sorted(records), dtype=np.int64)
    probs = {
        task: np.full((len(steps), num_layers, num_units), np.nan)
        for task in tasks
    }
    for i, step in enumerate(steps):
        for key, value in records[int(step)].items():
            match = SELECTION_PATTERN.match(key)
            probs[match['task']][i, int(match['layer']),
                                 int(match['unit'])] = float(value)
    return SelectionHistory(scalars_file, steps, probs)


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def plot_selection_heatmap(history: SelectionHistory,
                           out_file: str,
                           dpi: int = 120) -> str:
    """Fig. 3 / Fig. 10: each task's final ``p^t`` (``[L, N]``) as a heat map.

    One panel per task; rows are lego layers ``l`` (0 at the top), columns
    units ``k``; cells carry ``p_l^t[k]`` (colour scale 0..1). Each panel
    uses the task's last logged step (named in its title). Returns
    ``out_file``.
    """
    tasks = history.tasks
    L, N = history.num_layers, history.num_units
    fig = _new_figure(1.0 + (0.6 * N + 0.9) * len(tasks), 1.6 + 0.28 * L)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    image = None
    for ax, task in zip(axes, tasks):
        step, probs = history.final(task)
        image = ax.imshow(
            probs,
            vmin=0.0,
            vmax=1.0,
            cmap='viridis',
            aspect='auto',
            interpolation='nearest')
        for layer in range(L):
            for unit in range(N):
                value = probs[layer, unit]
                ax.text(
                    unit,
                    layer,
                    f'{value:.2f}',
                    ha='center',
                    va='center',
                    fontsize=7,
                    color='black' if value > 0.6 else 'white')
        ax.set_title(f'{task}\n(iter {step})', fontsize=9)
        ax.set_xticks(range(N))
        ax.set_xlabel('unit k')
        ax.set_yticks(range(L))
        ax.tick_params(labelsize=7)
        if ax is axes[0]:
            ax.set_ylabel('lego layer l')
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=r'$p_l^t[k]$')
    fig.suptitle('GPPF unit selection probability', fontsize=10)
    fig.savefig(out_file, dpi=dpi)
    return out_file


def plot_selection_curves(history: SelectionHistory,
                          out_file: str,
                          dpi: int = 120,
                          max_cols: int = 6,
                          units: Optional[List[int]] = None) -> str:
    """Fig. 11: ``p_l^t[k]`` over the logged iterations.

    One panel per lego layer ``l``; one colour per task (earlier tasks drawn
    thicker, so that tasks with equal curves stay visible), one line style
    per unit ``k``. ``units`` defaults to every unit, except that with
    ``N = 2`` only unit 0 is drawn (``p[1] = 1 - p[0]``). Returns
    ``out_file``.
    """
    from matplotlib.ticker import MaxNLocator
    tasks = history.tasks
    L, N = history.num_layers, history.num_units
    if units is None:
        units = [0] if N == 2 else list(range(N))
    bad = [k for k in units if not 0 <= k < N]
    if not units or bad:
        raise ValueError(f'units must be a non-empty list of unit indices '
                         f'in 0..{N - 1}, got {units!r}')
    cols = min(L, max_cols)
    rows = -(-L // cols)
    fig = _new_figure(2.3 * cols, 1.8 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    styles = ['-', '--', ':', '-.']
    marker = 'o' if len(history.steps) <= 30 else None
    widths = np.linspace(2.4, 1.0, len(tasks)) if len(tasks) > 1 else [1.2]
    for layer in range(rows * cols):
        ax = axes.flat[layer]
        if layer >= L:
            ax.set_visible(False)
            continue
        for i, task in enumerate(tasks):
            for unit in units:
                ax.plot(
                    history.steps,
                    history.probs[task][:, layer, unit],
                    color=f'C{i % 10}',
                    linestyle=styles[unit % 4],
                    linewidth=widths[i],
                    marker=marker,
                    markersize=2,
                    alpha=0.85,
                    label=f'{task} unit {unit}')
        ax.set_title(f'layer {layer}', fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for col in range(cols):  # lowest visible panel of each column
        ax = axes[(L - 1 - col) // cols, col]
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel('iteration', fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(r'$p_l^t[k]$', fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc='outside lower center',
        ncols=min(len(labels), 6),
        fontsize=7)
    title = 'GPPF unit selection probability during training'
    if N == 2 and list(units) == [0]:
        title += ' (unit 1: 1 - unit 0)'
    fig.suptitle(title, fontsize=10)
    fig.savefig(out_file, dpi=dpi)
    return out_file


def plot_selection(path: str, out_dir: Optional[str] = None) -> Dict[str, str]:
    """Read the selection from ``path`` and write both pictures.

    Args:
        path (str): Work dir or ``scalars.json`` (see
            :func:`find_scalars_file`).
        out_dir (str, optional): Output folder (created). Defaults to the
            folder of the ``scalars.json`` that was read.

    Returns:
        dict: ``heatmap`` / ``curves`` -> PNG path, ``scalars`` -> the file
        read.
    """
    history = load_selection(path)
    if out_dir is None:
        out_dir = osp.dirname(osp.abspath(history.source))
    os.makedirs(out_dir, exist_ok=True)
    return dict(
        scalars=history.source,
        heatmap=plot_selection_heatmap(history,
                                       osp.join(out_dir, HEATMAP_FILE)),
        curves=plot_selection_curves(history, osp.join(out_dir, CURVES_FILE)))
