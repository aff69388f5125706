"""glid_tools.launch: a script forked from the preloaded server runs as
``python script.py`` would (argv, working directory, environment,
``__main__``, exit status, output), in a process of its
own; other commands are plain subprocesses."""
import os
import subprocess
import sys
import textwrap

import pytest

from glid_tools import launch

pytestmark = pytest.mark.skipif(
    not launch.forkserver_enabled(), reason='no forkserver here')

SCRIPT = textwrap.dedent('''\
    import json, os, sys
    import torch
    import multiprocessing
    print(json.dumps(dict(
        argv=sys.argv, cwd=os.getcwd(), name=__name__,
        env=os.environ.get('GLID_X'),
        preloaded='glid_mm' in sys.modules,
        start_method=multiprocessing.get_start_method(allow_none=True),
        threads=torch.get_num_threads(), pid=os.getpid(),
        ppid=os.getppid())))
    print('to stderr', file=sys.stderr)
    code = int(os.environ.get('GLID_EXIT', '0'))
    if code < 0:
        raise RuntimeError('a failing script')
    sys.exit(code)
''')


def _run(tmp_path, cmd, env=None, name='log.txt'):
    log = tmp_path / name
    proc = launch.start(cmd, str(tmp_path), str(log), env)
    code = proc.wait(timeout=120)
    assert proc.poll() == code == proc.returncode
    return code, log.read_text()


@pytest.fixture
def script(tmp_path):
    folder = tmp_path / 'sub'
    folder.mkdir()
    path = folder / 'tool.py'
    path.write_text(SCRIPT)
    return path


def test_forked_script_runs_as_python_would(tmp_path, script):
    import json
    env = dict(os.environ, GLID_X='a', OMP_NUM_THREADS='1')
    cmd = [sys.executable, 'sub/tool.py', '--flag', 'v']
    proc = launch.start(cmd, str(tmp_path), str(tmp_path / 'a.log'), env)
    assert isinstance(proc, launch.ForkedScript)
    assert proc.wait(timeout=120) == 0
    out = (tmp_path / 'a.log').read_text()
    first = json.loads(out.splitlines()[0])
    # argv[0] is the script's absolute path (runpy), like __file__
    assert first['argv'] == [str(script), '--flag', 'v']
    assert first['cwd'] == str(tmp_path)
    assert first['name'] == '__main__'
    assert first['env'] == 'a' and first['threads'] == 1
    assert first['preloaded']  # forked from the server, not a new python
    assert first['pid'] != os.getpid() and first['ppid'] != os.getpid()
    assert 'to stderr' in out
    # no start method chosen yet, as in a new python (mmengine's runner
    # warns when it finds another than its own)
    assert first['start_method'] is None
    # a second run is a process of its own with its own environment
    env2 = dict(os.environ, OMP_NUM_THREADS='2')
    env2.pop('GLID_X', None)
    code, out = _run(tmp_path, cmd, env2, 'b.log')
    second = json.loads(out.splitlines()[0])
    assert code == 0 and second['env'] is None
    assert second['threads'] == 2 and second['pid'] != first['pid']


def test_exit_status_and_traceback(tmp_path, script):
    cmd = [sys.executable, str(script)]
    assert _run(tmp_path, cmd, dict(os.environ, GLID_EXIT='3'))[0] == 3
    code, out = _run(tmp_path, cmd, dict(os.environ, GLID_EXIT='-1'), 'c.log')
    assert code == 1
    assert 'RuntimeError: a failing script' in out


def test_log_is_appended(tmp_path, script):
    log = tmp_path / 'log.txt'
    log.write_text('$ header\n')
    code, out = _run(tmp_path, [sys.executable, str(script)])
    assert code == 0 and out.startswith('$ header\n') and '"argv"' in out


def test_wait_times_out_and_terminate_stops(tmp_path):
    path = tmp_path / 'sleep.py'
    path.write_text('import time\ntime.sleep(60)\n')
    proc = launch.start([sys.executable, str(path)], str(tmp_path),
                        str(tmp_path / 'log.txt'))
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.1)
    assert proc.poll() is None
    proc.terminate()
    assert proc.wait(timeout=30) != 0


def test_no_fork_where_cuda_is_visible(monkeypatch):
    """A process forked from the server could not initialise CUDA (the
    server's ``import glid_mm`` asked ``torch.cuda.is_available()``)."""
    import torch
    assert launch.forkserver_enabled()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert not launch.forkserver_enabled()


def test_other_commands_are_subprocesses(tmp_path, script, monkeypatch):
    proc = launch.start([sys.executable, '-c', 'print(7)'], str(tmp_path),
                        str(tmp_path / 'c.log'))
    assert isinstance(proc, subprocess.Popen)
    assert proc.wait(timeout=60) == 0
    assert (tmp_path / 'c.log').read_text().strip() == '7'
    monkeypatch.setenv('GLID_MM_FORKSERVER', '0')
    assert not launch.forkserver_enabled()
    proc = launch.start([sys.executable, str(script)], str(tmp_path),
                        str(tmp_path / 'd.log'))
    assert isinstance(proc, subprocess.Popen)
    assert proc.wait(timeout=60) == 0
    assert '"preloaded": false' in (tmp_path / 'd.log').read_text()
