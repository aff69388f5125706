"""Results of a benchmark: rows, a guarded row runner and the file writer.

Every benchmark of ``tools/benchmark/`` produces one result dict::

    dict(name='glid_pretrain_step', title=..., description=...,
         environment=collect_environment(device), settings={...},
         columns=[[key, header, fmt], ...], rows=[{...}, ...], notes=[...])

and :func:`write_results` writes it as ``<out_dir>/<name>.json`` (the dict
as is) and ``<out_dir>/<name>.md`` (machine, versions, settings, then one
markdown table with one row per model). A row holds ``model``, ``role``
(``'glid_mm'`` for ours, ``'peer'`` for the model compared against),
``status`` (``'ok'`` or ``'not run: <reason>'``) and the measured values;
a row that did not run shows its reason in the table instead of numbers.
"""
import json
import os
import os.path as osp
import sys
import traceback
from typing import Callable, Dict, List, Optional, Sequence

import torch

NOT_RUN = 'not run: '


class NotRunnable(RuntimeError):
    """A setting a model cannot run here (recorded, not raised further)."""


def _short_reason(exc: BaseException, limit: int = 200) -> str:
    msg = ' '.join(str(exc).split())
    if isinstance(exc, NotRunnable):
        return msg[:limit]
    return f'{type(exc).__name__}: {msg}'[:limit]


def run_row(
    base: Dict[str, object],
    fn: Callable[[], Dict[str, object]],
    explain: Optional[Callable[[BaseException], Optional[str]]] = None
) -> Dict[str, object]:
    """Run ``fn`` for one table row; a failure becomes a 'not run' row.

    Args:
        base: The row's identity (``model``, ``role``, ``config``, ...).
        fn: Measures and returns the row's values.
        explain: Optional hook turning a known failure into a readable
            reason (e.g. a missing bf16 kernel); its text is prepended.

    Returns:
        dict: ``base`` + the values + ``status='ok'``, or ``base`` +
        ``status='not run: <reason>'`` (the traceback goes to stderr).
    """
    row = dict(base)
    try:
        row.update(fn())
        row['status'] = 'ok'
    except Exception as exc:  # recorded in the table, the suite goes on
        if not isinstance(exc, NotRunnable):
            traceback.print_exc(file=sys.stderr)
        reason = _short_reason(exc)
        hint = explain(exc) if explain is not None else None
        row['status'] = NOT_RUN + (f'{hint} ({reason})' if hint else reason)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return row


def run_rows(
    base: Dict[str, object],
    fn: Callable[[], List[Dict[str, object]]],
    explain: Optional[Callable[[BaseException], Optional[str]]] = None
) -> List[Dict[str, object]]:
    """:func:`run_row` for a measurement that gives several rows: each is
    ``base`` + its values + ``status='ok'``; a failure gives the one 'not
    run' row."""
    holder = {}

    def collect():
        holder['rows'] = fn()
        return {}

    row = run_row(base, collect, explain)
    if row['status'] != 'ok':
        return [row]
    return [dict(base, **r, status='ok') for r in holder['rows']]


def make_result(
    name: str,
    title: str,
    description: str,
    environment: Dict[str, object],
    settings: Dict[str, object],
    columns: Sequence[Sequence[str]],
    rows: List[Dict[str, object]],
    notes: Sequence[str] = ()) -> Dict[str, object]:
    """Assemble the result dict described in the module docstring.

    ``columns``: ``(key, header, fmt)`` with ``fmt`` a format spec for
    numbers (e.g. ``'.1f'``) or ``''`` for text.
    """
    for col in columns:
        if len(col) != 3:
            raise ValueError(f'columns are (key, header, fmt), got {col!r}')
    return dict(
        name=name,
        title=title,
        description=description,
        environment=environment,
        settings=settings,
        columns=[list(c) for c in columns],
        rows=rows,
        notes=list(notes))


def _cell(value, fmt: str) -> str:
    if value is None or value == '':
        return '-'
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value).replace('|', '\\|')


def markdown_table(columns: Sequence[Sequence[str]],
                   rows: Sequence[Dict[str, object]]) -> List[str]:
    """Markdown lines of the table.

    Text columns (empty ``fmt``) identify the row; in a row that did not
    run, the first numeric column shows ``'not run: <reason>'`` and the
    other numeric columns ``'-'``.
    """
    lines = [
        '| ' + ' | '.join(c[1] for c in columns) + ' |',
        '|' + '---|' * len(columns)
    ]
    for row in rows:
        status = str(row.get('status', 'ok'))
        cells, reason_shown = [], status == 'ok'
        for key, _, fmt in columns:
            if status == 'ok' or not fmt:
                cells.append(_cell(row.get(key), fmt))
            elif not reason_shown:
                cells.append(_cell(status, ''))
                reason_shown = True
            else:
                cells.append('-')
        if not reason_shown:  # no numeric column: the last cell says it
            cells[-1] = _cell(status, '')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def _environment_lines(env: Dict[str, object]) -> List[str]:
    versions = ', '.join(f'{k} {env[k]}'
                         for k in ('torch', 'mmengine', 'mmcv', 'mmdet',
                                   'mmseg', 'mmpose', 'mmpretrain', 'glid_mm')
                         if k in env)
    lines = [
        f"- Device: {env.get('device')}",
        f"- Machine: {env.get('cpu')}, {env.get('cpu_cores_usable')} usable "
        f"CPU cores, {env.get('memory_gib')} GiB RAM; {env.get('os')}",
        f"- Versions: Python {env.get('python')}, {versions}; torch CUDA "
        f"{env.get('torch_cuda')}, mmcv ops CUDA {env.get('mmcv_ops_cuda')}",
        f"- glid_mm commit: {env.get('glid_mm_commit')}; date (UTC): "
        f"{env.get('date_utc')}",
    ]
    if env.get('gpu'):
        lines.append(f"- GPU: {env['gpu']}, {env.get('gpu_memory_gib')} GiB,"
                     f" cuDNN {env.get('cudnn')}, dense bf16 peak "
                     f"{env.get('gpu_dense_bf16_peak_tflops')} TFLOP/s")
    return lines


def result_markdown(result: Dict[str, object]) -> str:
    """The markdown page of one result dict."""
    settings = ', '.join(f'{k}={v}' for k, v in result['settings'].items())
    lines = [f"# {result['title']}", '', result['description'], '']
    lines += _environment_lines(result['environment'])
    lines += [f'- Settings: {settings}', '']
    lines += markdown_table(result['columns'], result['rows'])
    if result.get('notes'):
        lines += [''] + [f'- {note}' for note in result['notes']]
    return '\n'.join(lines) + '\n'


def write_json_markdown(out_dir: str, name: str, data: Dict[str, object],
                        markdown: str) -> Dict[str, str]:
    """Write ``<out_dir>/<name>.json`` and ``.md``; return both paths.

    The one writer of every benchmark (the LiT decoding benchmark included).
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(
        json=osp.join(out_dir, f'{name}.json'),
        markdown=osp.join(out_dir, f'{name}.md'))
    with open(paths['json'], 'w') as f:
        json.dump(data, f, indent=2, default=str)
    with open(paths['markdown'], 'w') as f:
        f.write(markdown)
    return paths


def write_results(result: Dict[str, object], out_dir: str) -> Dict[str, str]:
    """Write a result dict (see the module docstring) as JSON + markdown."""
    for key in ('name', 'title', 'description', 'environment', 'settings',
                'columns', 'rows'):
        if key not in result:
            raise KeyError(f'benchmark result is missing {key!r}')
    return write_json_markdown(out_dir, result['name'], result,
                               result_markdown(result))


def failed_own_rows(result: Dict[str, object]) -> List[str]:
    """Models of ours (``role='glid_mm'``) that did not run: a bug, not a
    peer's limitation; scripts exit non-zero on them."""
    return [
        f"{r.get('model')}: {r.get('status')}" for r in result['rows']
        if r.get('role') == 'glid_mm' and r.get('status') != 'ok'
    ]
