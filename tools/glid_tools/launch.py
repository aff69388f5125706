"""Start ``python tools/<script>.py ...`` without paying its imports each
time.

The demo and the studies run ``tools/train.py``, ``tools/test.py`` and the
converters many times (10 starts in the study's tiny preset, dozens in its
CPU preset). A fresh interpreter spends about 5 s of a 2-core machine
importing torch, the four toolboxes and ``glid_mm`` before it reads its
config. :func:`start` runs such a script in a process forked from a server
that imported them once (multiprocessing's ``'forkserver'`` start method
with ``glid_mm`` preloaded; the server itself never builds a model or runs
an op, so nothing of torch's thread pools is forked). Each run is still a
process of its own (its own globals, registries' scope, seeds, exit status
and log), and runs the script as ``__main__`` with its own ``sys.argv``,
working directory and environment, as ``python <script>.py`` would
(``sys.argv[0]`` and ``__file__`` are the script's absolute path). One
difference: the script's folder is not put first on ``sys.path``; the
project's scripts import only installed packages (``glid_mm``,
``glid_tools``; tests/test_house_rules.py refuses ``sys.path`` changes).

Other commands (``-m torch.distributed.run ...``, ``-c ...``, a shell
script) run as plain subprocesses, and so does every command with
``GLID_MM_FORKSERVER=0`` or where multiprocessing has no forkserver
(Windows).
"""
import multiprocessing
import os
import os.path as osp
import runpy
import subprocess
import sys
from typing import Dict, List, Optional

#: modules the server imports once (what ``tools/train.py`` imports)
PRELOAD = ['glid_mm', 'mmengine.runner']


def forkserver_enabled() -> bool:
    """Whether :func:`start` forks Python scripts from the preloaded
    server (``GLID_MM_FORKSERVER=0`` turns it off)."""
    return os.environ.get('GLID_MM_FORKSERVER', '1') != '0' and \
        'forkserver' in multiprocessing.get_all_start_methods()


def _script_of(cmd: List[str]) -> Optional[str]:
    """The script of ``[python, <script>.py, args...]``, else None."""
    if len(cmd) >= 2 and cmd[0] == sys.executable and \
            cmd[1].endswith('.py') and not cmd[1].startswith('-'):
        return cmd[1]
    return None


def _run_script(script: str, argv: List[str], cwd: str, log: str,
                env: Dict[str, str]) -> None:
    """In the forked process: what ``python script argv...`` does, with
    stdout and stderr appended to ``log``."""
    os.chdir(cwd)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    threads = env.get('OMP_NUM_THREADS')
    if threads and threads.isdigit() and int(threads) > 0:
        # the server's OpenMP read the variable when it imported torch
        import torch
        torch.set_num_threads(int(threads))
    path = osp.abspath(script)
    sys.argv = [path] + list(argv)
    runpy.run_path(path, run_name='__main__')


class ForkedScript:
    """A script run in a forked process, with the part of
    :class:`subprocess.Popen`'s interface the tools use (``pid``,
    ``returncode``, ``poll``, ``wait``, ``terminate``, ``kill``)."""

    def __init__(self, cmd: List[str], cwd: str, log: str, env: Dict[str,
                                                                     str]):
        ctx = multiprocessing.get_context('forkserver')
        ctx.set_forkserver_preload(PRELOAD)
        self.args = cmd
        self._proc = ctx.Process(
            target=_run_script,
            args=(cmd[1], cmd[2:], osp.abspath(cwd), osp.abspath(log),
                  dict(env)),
            name=osp.basename(cmd[1]))
        self._proc.start()
        self.pid = self._proc.pid

    @property
    def returncode(self) -> Optional[int]:
        return self._proc.exitcode

    def poll(self) -> Optional[int]:
        return self._proc.exitcode

    def wait(self, timeout: Optional[float] = None) -> int:
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._proc.exitcode

    def terminate(self) -> None:
        self._proc.terminate()

    def kill(self) -> None:
        self._proc.kill()


def start(cmd: List[str],
          cwd: str,
          log: str,
          env: Optional[Dict[str, str]] = None):
    """Start ``cmd`` in ``cwd`` with its stdout and stderr appended to the
    file ``log``; return a process object (``poll`` / ``wait`` /
    ``returncode`` / ``terminate`` as :class:`subprocess.Popen`).

    ``[sys.executable, '<script>.py', ...]`` is forked from the preloaded
    server (see the module docstring); anything else is a subprocess.
    ``env`` defaults to this process's environment.
    """
    env = dict(os.environ if env is None else env)
    if _script_of(cmd) is not None and forkserver_enabled():
        return ForkedScript(cmd, cwd, log, env)
    with open(log, 'a') as f:
        return subprocess.Popen(
            cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)


__all__ = ['start', 'forkserver_enabled', 'ForkedScript', 'PRELOAD']
