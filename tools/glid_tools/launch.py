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
(``sys.argv[0]`` and ``__file__`` are the script's absolute path).
Differences from a fresh interpreter, none of which the project's scripts
depend on:

- ``sys.path`` is the caller's (the script's folder is not put first; the
  project's scripts import only installed packages, and
  tests/test_house_rules.py refuses ``sys.path`` changes);
- multiprocessing imports the caller's main module again in each process
  (``__mp_main__``): a caller must guard its work with
  ``if __name__ == '__main__'`` (``tools/demo_glid.py`` and
  ``tools/study.py`` do);
- the environment is the step's, but what the server read at import time
  stays: torch's thread count is set again from ``OMP_NUM_THREADS``;
  other libraries' thread pools and ``PYTHONHASHSEED`` are the server's;
- ``atexit`` handlers do not run when the script ends (mmengine registers
  none; the logging handlers flush each record).

Other commands (``-m torch.distributed.run ...``, ``-c ...``, a shell
script) run as plain subprocesses, and so does every command with
``GLID_MM_FORKSERVER=0``, where multiprocessing has no forkserver
(Windows) or where a CUDA device is visible (:func:`forkserver_enabled`).
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
    server: not with ``GLID_MM_FORKSERVER=0``, not where multiprocessing
    has no forkserver, and not where a CUDA device is visible (importing
    ``glid_mm`` asks ``torch.cuda.is_available()``, after which a forked
    process cannot initialise CUDA)."""
    if os.environ.get('GLID_MM_FORKSERVER', '1') == '0' or \
            'forkserver' not in multiprocessing.get_all_start_methods():
        return False
    import torch
    return not torch.cuda.is_available()


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
    # the script starts with no start method chosen, as a new python does
    # (mmengine warns when it finds another than its own)
    multiprocessing.set_start_method(None, force=True)
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
