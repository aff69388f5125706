"""Multi-seed studies: the bookkeeping shared by ``tools/study.py``.

A study is a list of :class:`Step` s (train / convert / test commands of
the project's own tools, run as a user runs them) and a summary of their
results. This module holds what every study needs and nothing
study-specific:

- :func:`run_plan` runs the steps in order (``jobs`` of them at a time
  when their dependencies allow), each in ``<runs_dir>/<step.name>``. A step
  that finished writes ``done.json`` with a fingerprint of its command,
  config and the fingerprints of the steps it depends on; a later call
  skips it while the fingerprint matches, reruns it when the plan changed
  (and so everything downstream of it), and resumes an interrupted
  training run from its last checkpoint (``tools/train.py --resume``).
  Each step is a process of its own; ``python tools/<script>.py`` steps
  are forked from a server that imported the toolboxes once
  (:mod:`glid_tools.launch`, about 5 s less per step on 2 cores).
- :class:`StudyProgress` shows one progress bar over the planned work in
  estimated seconds (moved by the training iterations each run logs), with
  elapsed time and ETA.
- :func:`cell_stats` / :func:`paired_stats`: mean and standard deviation
  per cell, paired differences with their standard error and a 95 %
  t-interval. Seeds pair runs: the same seed gives the same fine-tuning
  data order whatever the initialisation.
- :func:`test_metrics` / :func:`train_records`: what mmengine wrote.
"""
import glob
import hashlib
import json
import math
import os
import os.path as osp
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from glid_tools import launch
from glid_tools.progress import Progress, last_train_iter
from glid_tools.stack_demo import eval_records, losses

#: two-sided 95 % quantiles of Student's t by degrees of freedom (the
#: normal 1.96 beyond 30)
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042
}


def t95(df: int) -> float:
    """Two-sided 95 % Student-t quantile (the next smaller tabulated df,
    which errs on the wide side)."""
    if df < 1:
        return float('nan')
    if df > 30:
        return 1.96
    return _T95[max(k for k in _T95 if k <= df)]


@dataclass
class Step:
    """One command of a study.

    Args:
        name: Folder under the runs directory, unique in the plan.
        kind: ``'train'`` (``tools/train.py``), ``'test'``
            (``tools/test.py``) or ``'convert'`` (a converter script).
        args: The command after ``python``, relative to the project root;
            ``{run}`` is replaced by the step's folder and ``{runs}`` by
            the runs directory.
        deps: Names of the steps whose outputs it reads.
        iters: Training iterations (progress), 0 for other kinds.
        est_s: Estimated wall seconds (plan, progress, ETA).
        config: Text of a config written to ``{run}/config.py`` before the
            command runs (the command names it), or None.
        meta: What the summary needs (cell, seed, ...).
    """
    name: str
    kind: str
    args: List[str]
    deps: List[str] = field(default_factory=list)
    iters: int = 0
    est_s: float = 0.0
    config: Optional[str] = None
    meta: dict = field(default_factory=dict)


def fingerprints(plan: Sequence[Step]) -> Dict[str, str]:
    """A hash per step of its command, config and dependencies' hashes:
    a change anywhere upstream changes every step below it."""
    out: Dict[str, str] = {}
    for step in plan:
        missing = [d for d in step.deps if d not in out]
        if missing:
            raise ValueError(f'step {step.name!r} depends on {missing}, '
                             'which are not earlier in the plan')
        blob = json.dumps(
            [step.kind, step.args, step.config, [out[d] for d in step.deps]])
        out[step.name] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    names = [s.name for s in plan]
    if len(set(names)) != len(names):
        raise ValueError(
            'step names repeat in the plan: ' +
            ', '.join(sorted({n
                              for n in names if names.count(n) > 1})))
    return out


def read_done(run_dir: str) -> Optional[dict]:
    """The ``done.json`` of a finished step, or None."""
    path = osp.join(run_dir, 'done.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def step_state(step: Step, run_dir: str, fingerprint: str) -> str:
    """``'done'``, ``'stale'`` (finished with another plan), ``'partial'``
    (started with this plan, not finished), ``'new'``."""
    done = read_done(run_dir)
    if done is not None:
        return 'done' if done.get('fingerprint') == fingerprint else 'stale'
    started = osp.join(run_dir, 'started.json')
    if osp.isfile(started):
        with open(started) as f:
            if json.load(f).get('fingerprint') == fingerprint:
                return 'partial'
        return 'stale'
    return 'new'


def _write_json(path: str, obj) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)  # atomic: a crash leaves the old file or none


def train_records(work_dir: str) -> List[dict]:
    """Every record of every ``vis_data/scalars.json`` under ``work_dir``
    (a resumed run writes a second one), in order of time."""
    records = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics ``tools/test.py`` logged (mmengine's LoggerHook dumps
    them to ``<work_dir>/<timestamp>/<timestamp>.json``), newest run."""
    files = sorted(
        p for p in glob.glob(osp.join(work_dir, '*', '*.json'))
        if osp.basename(p)[:-5] == osp.basename(osp.dirname(p)))
    if not files:
        raise FileNotFoundError(f'no test metrics json under {work_dir}')
    with open(files[-1]) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return {
        k: v
        for k, v in lines[-1].items()
        if isinstance(v, (int, float)) and k not in ('step', 'time',
                                                     'data_time')
    }


def _result_of(step: Step, run_dir: str) -> dict:
    if step.kind == 'test':
        return dict(metrics=test_metrics(run_dir))
    if step.kind == 'train':
        recs = train_records(run_dir)
        vals = [{
            k: v
            for k, v in r.items() if k not in ('data_time', 'time')
        } for r in eval_records(recs)]
        return dict(losses=losses(recs), val=vals)
    return {}


class StudyProgress:
    """One bar over the plan's estimated seconds; a training step moves it
    by the fraction of its iterations that its log shows."""

    def __init__(self, steps: Sequence[Step], enabled: bool = True):
        self.total = int(sum(max(s.est_s, 1.0) for s in steps))
        self.bar = Progress(self.total, enabled=enabled)
        self.finished = 0.0
        self.running: Dict[str, float] = {}

    def poll(self, steps: Dict[str, Step], run_dirs: Dict[str, str]):
        for name in list(self.running):
            step = steps[name]
            if step.iters:
                done = last_train_iter(osp.join(run_dirs[name], 'step.log'))
                self.running[name] = (
                    max(step.est_s, 1.0) * min(done or 0, step.iters) /
                    step.iters)
        self.bar.update_to(int(self.finished + sum(self.running.values())))

    def start(self, name: str) -> None:
        self.running[name] = 0.0

    def finish(self, step: Step) -> None:
        self.running.pop(step.name, None)
        self.finished += max(step.est_s, 1.0)

    def say(self, msg: str) -> None:
        self.bar.newline()
        print(msg, flush=True)

    def close(self) -> None:
        self.bar.close()


def _command(step: Step, run_dir: str, runs_dir: str) -> List[str]:
    return [sys.executable] + [
        a.replace('{run}', run_dir).replace('{runs}', runs_dir)
        for a in step.args
    ]


def run_plan(plan: Sequence[Step],
             root: str,
             runs_dir: str,
             jobs: int = 1,
             progress: bool = True,
             poll_s: float = 2.0,
             env: Optional[dict] = None) -> Dict[str, dict]:
    """Run what is not done yet; return ``{name: done record}``.

    ``jobs`` steps run at once when their dependencies are done (each with
    ``OMP_NUM_THREADS`` = cores / jobs). A failing step stops the study
    with its log's tail; what finished stays done.
    """
    fps = fingerprints(plan)
    steps = {s.name: s for s in plan}
    dirs = {s.name: osp.join(runs_dir, s.name) for s in plan}
    states = {s.name: step_state(s, dirs[s.name], fps[s.name]) for s in plan}
    # a rerun upstream invalidates downstream through the fingerprints
    todo = [s for s in plan if states[s.name] != 'done']
    records = {
        s.name: read_done(dirs[s.name])
        for s in plan if states[s.name] == 'done'
    }
    skipped = len(plan) - len(todo)
    if skipped:
        print(
            f'[study] {skipped} of {len(plan)} steps already done '
            f'(skipped); {len(todo)} to run',
            flush=True)
    if not todo:
        return records
    os.makedirs(runs_dir, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    child_env = dict(os.environ, **(env or {}))
    if jobs > 1:
        child_env.setdefault('OMP_NUM_THREADS', str(threads))
    bar = StudyProgress(todo, enabled=progress)
    running: Dict[str, tuple] = {}
    pending = list(todo)
    try:
        while pending or running:
            for step in list(pending):
                if len(running) >= jobs:
                    break
                if any(d not in records for d in step.deps):
                    continue
                pending.remove(step)
                running[step.name] = _start(step, root, dirs[step.name],
                                            runs_dir, fps[step.name],
                                            states[step.name], child_env)
                bar.start(step.name)
                bar.say(f'[study] start  {step.name}' +
                        (' (resuming)' if running[step.name][3] else ''))
            if not running:
                blocked = ', '.join(s.name for s in pending)
                raise RuntimeError(f'steps never became ready: {blocked}')
            time.sleep(poll_s)
            bar.poll(steps, dirs)
            for name in list(running):
                proc, log, t0, _ = running[name]
                if proc.poll() is None:
                    continue
                log.close()
                del running[name]
                step = steps[name]
                if proc.returncode != 0:
                    with open(
                            osp.join(dirs[name], 'step.log'),
                            errors='replace') as f:
                        tail = f.read()[-3000:]
                    raise RuntimeError(
                        f'step {name} failed (exit {proc.returncode}); log '
                        f'{dirs[name]}/step.log:\n{tail}')
                rec = dict(
                    fingerprint=fps[name],
                    command=_command(step, dirs[name], runs_dir),
                    wall_s=round(time.time() - t0, 1),
                    finished=time.strftime('%Y-%m-%d %H:%M:%S'),
                    meta=step.meta,
                    **_result_of(step, dirs[name]))
                _write_json(osp.join(dirs[name], 'done.json'), rec)
                records[name] = rec
                bar.finish(step)
                bar.say(f'[study] done   {name} in {rec["wall_s"]:.0f} s')
    finally:
        for proc, log, _, _ in running.values():
            proc.terminate()
            log.close()
        bar.close()
    return records


def _start(step: Step, root: str, run_dir: str, runs_dir: str,
           fingerprint: str, state: str, env: dict):
    resume = (
        state == 'partial' and step.kind == 'train'
        and osp.isfile(osp.join(run_dir, 'last_checkpoint')))
    if not resume and osp.isdir(run_dir):
        shutil.rmtree(run_dir)  # stale or broken: start clean
    os.makedirs(run_dir, exist_ok=True)
    if step.config is not None:
        with open(osp.join(run_dir, 'config.py'), 'w') as f:
            f.write(step.config)
    _write_json(
        osp.join(run_dir, 'started.json'), dict(fingerprint=fingerprint))
    cmd = _command(step, run_dir, runs_dir) + (['--resume'] if resume else [])
    log_path = osp.join(run_dir, 'step.log')
    log = open(log_path, 'a' if resume else 'w')
    log.write('$ ' + ' '.join(cmd) + '\n')
    log.flush()
    proc = launch.start(cmd, root, log_path, env)
    return proc, log, time.time(), resume


# ---------------------------------------------------------------- statistics
def cell_stats(values: Sequence[float]) -> dict:
    """n, mean and sample standard deviation (ddof 1; nan for one
    value)."""
    n = len(values)
    mean = sum(values) / n if n else float('nan')
    std = (
        math.sqrt(sum((v - mean)**2
                      for v in values) / (n - 1)) if n > 1 else float('nan'))
    return dict(n=n, mean=mean, std=std)


def paired_stats(a: Dict[int, float], b: Dict[int, float]) -> dict:
    """Differences ``a - b`` over the seeds both have: mean, standard
    deviation, standard error, 95 % t-interval and how many are > 0."""
    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    st = cell_stats(diffs)
    se = st['std'] / math.sqrt(st['n']) if st['n'] > 1 else float('nan')
    half = t95(st['n'] - 1) * se
    return dict(
        seeds=seeds,
        diffs=diffs,
        n=st['n'],
        mean=st['mean'],
        std=st['std'],
        se=se,
        ci95=[st['mean'] - half, st['mean'] + half],
        positive=sum(d > 0 for d in diffs))


def fmt(x: float, digits: int = 2) -> str:
    return '-' if x is None or (isinstance(x, float) and math.isnan(x)) \
        else f'{x:.{digits}f}'


def plan_table(plan: Sequence[Step], runs_dir: str) -> str:
    """The plan as text: step, kind, iterations, estimate, state."""
    fps = fingerprints(plan)
    lines = [f'{"step":<44} {"kind":<8} {"iters":>6} {"est.":>7}  state']
    todo = 0.0
    for s in plan:
        state = step_state(s, osp.join(runs_dir, s.name), fps[s.name])
        if state != 'done':
            todo += s.est_s
        lines.append(f'{s.name:<44} {s.kind:<8} {s.iters:>6} '
                     f'{s.est_s / 60:>6.1f}m  {state}')
    total = sum(s.est_s for s in plan)
    lines.append(f'{len(plan)} steps, estimated {total / 60:.0f} min in all, '
                 f'{todo / 60:.0f} min still to run')
    return '\n'.join(lines)


__all__ = [
    'Step', 'run_plan', 'fingerprints', 'step_state', 'read_done',
    'train_records', 'test_metrics', 'cell_stats', 'paired_stats', 't95',
    'fmt', 'plan_table', 'StudyProgress'
]
