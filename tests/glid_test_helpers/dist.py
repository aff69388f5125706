"""Multi-process test plumbing, one copy each: a free port, the environment
of ``tools/dist_train.sh`` on the CPU, a 2-process ``dist_train.sh`` run and
spawned worker functions with a deadline.

Records of a run's ``vis_data/scalars.json`` come from
:func:`glid_tools.stack_demo.read_scalars` (what the demos and the study
read).
"""
import os
import os.path as osp
import socket
import subprocess
import sys
import time
from typing import Callable, Sequence

import pytest
import torch.multiprocessing as mp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def free_port() -> int:
    """A TCP port that was free a moment ago (for gloo's rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_env(**extra) -> dict:
    """The environment for ``tools/dist_train.sh`` / ``dist_test.sh`` on
    the CPU: a free ``PORT``, one intra-op thread per process (2
    processes on 2 cores) and this interpreter's ``bin`` first on
    ``PATH`` (the scripts call ``python``)."""
    env = dict(
        os.environ,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
        PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def dist_train(
    config: str,
    work_dir: str,
    *cfg_options: str,
    nprocs: int = 2,
    timeout: int = 600,
    extra_args: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    """``bash tools/dist_train.sh config nprocs --work-dir work_dir
    [extra_args] --cfg-options ...`` from the project root; fails the test
    with the output's tail when it does not exit 0."""
    cmd = [
        'bash', 'tools/dist_train.sh', config,
        str(nprocs), '--work-dir',
        str(work_dir), *extra_args
    ]
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env=dist_env(),
        capture_output=True,
        text=True,
        timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f'{" ".join(cmd)} exited {done.returncode}:\n' +
                    done.stdout[-3000:] + done.stderr[-3000:])
    return done


def spawn(fn: Callable,
          args: tuple = (),
          nprocs: int = 2,
          timeout: float = 240) -> None:
    """Run ``fn(rank, port, *args)`` on ``nprocs`` spawned processes (a
    free port each time); kill them and fail the test after ``timeout``
    seconds (a collective that pairs the wrong tensors may hang)."""
    ctx = mp.start_processes(
        fn,
        args=(free_port(), *args),
        nprocs=nprocs,
        join=False,
        start_method='spawn')
    deadline = time.time() + timeout
    while not ctx.join(timeout=5):
        if time.time() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f'{getattr(fn, "__name__", fn)} on {nprocs} '
                        f'processes did not finish in {timeout} s '
                        '(deadlock?)')
