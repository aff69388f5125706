"""tools/build_wheelhouse.sh and tools/install_offline.sh (offline install).

Default run: syntax, --help, argument errors and --dry-run output; no
network, nothing installed (about 20 s, most of it one ``import torch``).
``GLID_MM_NETWORK_TESTS=1`` also downloads a real cp312 wheelhouse from PyPI
(about 170 MB, 30 s on a fast link).
"""
import hashlib
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BUILD = osp.join(ROOT, 'tools', 'build_wheelhouse.sh')
INSTALL = osp.join(ROOT, 'tools', 'install_offline.sh')
HOST_PY = '%d.%d' % sys.version_info[:2]


def run(script, *args, env=None, timeout=120):
    full_env = dict(os.environ, GLID_MM_PYTHON=sys.executable)
    full_env.update(env or {})
    return subprocess.run(['bash', script, *args],
                          cwd=ROOT,
                          env=full_env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def command_lines(stdout, marker):
    """The printed pip commands (indented lines) that contain ``marker``."""
    return [
        line for line in stdout.splitlines()
        if line.startswith('    ') and ' -m pip ' in line and marker in line
    ]


@pytest.mark.parametrize('script', [BUILD, INSTALL])
def test_bash_syntax(script):
    res = subprocess.run(['bash', '-n', script],
                         capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr


def test_help():
    res = run(BUILD, '--help')
    assert res.returncode == 0
    for opt in ('--python-version', '--platform', '--numpy', '--out',
                '--with-transformers', '--dry-run'):
        assert opt in res.stdout
    assert 'set -euo' not in res.stdout
    res = run(INSTALL, '-h')
    assert res.returncode == 0
    assert 'WHEELHOUSE [--cuda] [--dry-run]' in res.stdout
    assert 'never installed' in res.stdout


@pytest.mark.parametrize('args, message', [
    (['--frobnicate'], "unknown option '--frobnicate'"),
    (['--python-version'], "option '--python-version' needs a value"),
    (['--python-version', '--dry-run'
      ], "option '--python-version' needs a value"),
    (['--python-version', '3'], "--python-version '3' is not of the form"),
    (['--numpy', '2'], "--numpy '2' is not a version range"),
    (['--platform', 'manylinux_2_5_x86_64'], 'glibc 2.5 is older'),
    (['--platform', 'Many Linux'], "--platform 'Many Linux' is not"),
])
def test_build_bad_arguments(args, message, tmp_path):
    res = run(BUILD, *args, '--dry-run', '--out', str(tmp_path / 'wh'))
    assert res.returncode != 0
    assert message in res.stderr
    assert not (tmp_path / 'wh').exists()


def test_build_dry_run_cp312(tmp_path):
    out = tmp_path / 'wh'
    res = run(BUILD, '--dry-run', '--python-version', '3.12', '--platform',
              'manylinux2014_x86_64', '--out', str(out))
    assert res.returncode == 0, res.stderr
    assert not out.exists(), 'a dry run must not create the wheelhouse'
    text = res.stdout
    # the binary resolution for the target
    (wheels, ) = command_lines(text, f'-r {out}/requirements.txt')
    for flag in ('download --only-binary=:all:', '--python-version 3.12',
                 '--implementation cp', '--platform manylinux2014_x86_64',
                 '--platform manylinux_2_17_x86_64',
                 f'-c {out}/constraints.txt', f'-d {out}'):
        assert flag in wheels
    # mmcv as its sdist, mmpose without its requirements (chumpy)
    (mmcv, ) = command_lines(text, 'mmcv==2.1.0')
    assert '--no-binary=:all:' in mmcv and '--no-deps' in mmcv
    (mmpose, ) = command_lines(text, 'mmpose==1.3.2')
    assert '--no-deps' in mmpose and '--only-binary=:all:' in mmpose
    assert '--python-version 3.12' in mmpose
    xtco = command_lines(text, "'xtcocotools>=1.14'")
    assert len(xtco) == 2  # a wheel for cp312, else the sdist
    assert '--only-binary=:all:' in xtco[0] and '--no-binary=:all:' in xtco[1]
    # requirements/constraints printed; numpy follows a 3.12 target's torch
    reqs = text.split('requirements.txt would be:')[1].split(
        'constraints.txt would be:')[0]
    cons = text.split('constraints.txt would be:')[1].split('[wheelhouse]')[0]
    req_names = [
        line.strip() for line in reqs.splitlines()
        if line.strip() and not line.strip().startswith('#')
    ]
    for name in ('mmengine==0.10.7', 'mmdet==3.3.0', 'mmsegmentation==1.2.2',
                 'mmpretrain==1.2.0', 'setuptools>=77,<82', 'wheel', 'ninja',
                 'numpy>=2', 'json_tricks', 'munkres', 'pycocotools>=2.0.7'):
        assert name in req_names, name
    for name in req_names:
        assert not name.startswith(
            ('torch', 'chumpy', 'xtcocotools', 'mmcv', 'mmpose')), name
    assert 'transformers<5' in cons and 'opencv-python<5' in cons
    assert 'numpy<2' not in cons


def test_build_dry_run_cp311_defaults_to_numpy1(tmp_path):
    res = run(BUILD, '--dry-run', '--python-version', '3.11',
              '--platform', 'manylinux_2_28_x86_64', '--out',
              str(tmp_path / 'wh'), '--with-transformers')
    assert res.returncode == 0, res.stderr
    cons = res.stdout.split('constraints.txt would be:')[1]
    assert '    numpy<2\n' in cons and '    opencv-python<4.12\n' in cons
    (wheels, ) = command_lines(res.stdout, '/requirements.txt')
    for glibc in range(17, 29):  # pip does not expand PEP 600 tags itself
        assert f'--platform manylinux_2_{glibc}_x86_64' in wheels
    assert '--platform manylinux2014_x86_64' in wheels
    assert '--platform manylinux_2_29_x86_64' not in wheels
    (tf, ) = command_lines(res.stdout, "'transformers<5'")
    assert '--only-binary=:all:' in tf


def test_build_defaults_to_running_interpreter():
    res = run(BUILD, '--dry-run')
    assert res.returncode == 0, res.stderr
    assert f'--python-version {HOST_PY}' in res.stdout
    assert f'{ROOT}/wheelhouse' in res.stdout


@pytest.mark.parametrize('args, message', [
    ([], 'missing WHEELHOUSE'),
    (['/no/such/wheelhouse'], "wheelhouse '/no/such/wheelhouse' is not a "
     'directory'),
    (['--frobnicate'], "unknown option '--frobnicate'"),
    (['a', 'b'], "one WHEELHOUSE expected, got 'a' and 'b'"),
])
def test_install_bad_arguments(args, message):
    res = run(INSTALL, *args)
    assert res.returncode != 0
    assert message in res.stderr


def fake_wheelhouse(path, python=HOST_PY, corrupt=False):
    """The files install_offline.sh reads, with a stand-in mmcv sdist."""
    path.mkdir()
    (path / 'wheelhouse.env').write_text(
        f'GLID_MM_WH_PYTHON={python}\n'
        'GLID_MM_WH_PLATFORMS=manylinux2014_x86_64'
        '\nGLID_MM_WH_NUMPY=<2\nGLID_MM_WH_MMCV=2.1.0\nGLID_MM_WH_MMPOSE=1.3.2'
        '\n')
    (path / 'requirements.txt').write_text('mmengine==0.10.7\n')
    (path / 'constraints.txt').write_text('numpy<2\n')
    (path / 'mmcv-2.1.0.tar.gz').write_bytes(b'not really an sdist')
    (path / 'manifest.txt').write_text('sdist 1 mmcv-2.1.0.tar.gz\n')
    sums = []
    for name in ('mmcv-2.1.0.tar.gz', 'requirements.txt', 'constraints.txt',
                 'wheelhouse.env'):
        digest = hashlib.sha256((path / name).read_bytes()).hexdigest()
        sums.append(f'{digest}  {name}\n')
    if corrupt:
        (path / 'mmcv-2.1.0.tar.gz').write_bytes(b'changed in transit')
    (path / 'SHA256SUMS').write_text(''.join(sums))
    return path


def test_install_needs_a_complete_wheelhouse(tmp_path):
    (tmp_path / 'wh').mkdir()
    res = run(INSTALL, str(tmp_path / 'wh'))
    assert res.returncode != 0
    assert f"wheelhouse '{tmp_path}/wh' has no wheelhouse.env" in res.stderr


def test_install_refuses_other_python(tmp_path):
    wh = fake_wheelhouse(tmp_path / 'wh', python='3.99')
    res = run(
        INSTALL,
        str(wh),
        '--dry-run',
        env=dict(GLID_MM_LOG_DIR=str(tmp_path / 'logs')))
    assert res.returncode != 0
    assert f'built for Python 3.99 but {sys.executable} is Python {HOST_PY}' \
        in res.stderr


def test_install_cuda_needs_nvcc(tmp_path):
    wh = fake_wheelhouse(tmp_path / 'wh')
    res = run(
        INSTALL,
        str(wh),
        '--cuda',
        '--dry-run',
        env=dict(PATH='/usr/bin:/bin', GLID_MM_LOG_DIR=str(tmp_path / 'logs')))
    assert res.returncode != 0
    assert '--cuda needs nvcc on PATH' in res.stderr


def test_install_detects_corrupt_wheelhouse(tmp_path):
    wh = fake_wheelhouse(tmp_path / 'wh', corrupt=True)
    logs = tmp_path / 'logs'
    res = run(
        INSTALL, str(wh), '--dry-run', env=dict(GLID_MM_LOG_DIR=str(logs)))
    assert res.returncode == 1
    assert "step 'verify' failed" in res.stderr
    assert 'mmcv-2.1.0.tar.gz: FAILED' in res.stderr
    assert f'full log: {logs}/verify.log' in res.stderr


@pytest.mark.slow
def test_install_dry_run(tmp_path):
    wh = fake_wheelhouse(tmp_path / 'wh')
    logs = tmp_path / 'logs'
    res = run(
        INSTALL,
        str(wh),
        '--dry-run',
        env=dict(
            GLID_MM_LOG_DIR=str(logs), GLID_MM_CACHE=str(tmp_path / 'cache')))
    assert res.returncode == 0, res.stdout + res.stderr
    text = res.stdout
    assert '[offline] verify' in text and '[offline] torch' in text
    import torch
    assert f'torch {torch.__version__}' in text
    keep = (logs / 'keep-torch.txt').read_text()
    assert keep.startswith('torch==') and 'torchvision==' in keep
    pip_lines = command_lines(text, ' -m pip ')
    assert len(pip_lines) == 7
    for line in pip_lines:
        assert ' install --no-index ' in line or ' wheel --no-index ' in line
        # pip may never install or replace torch
        assert not any(
            arg.strip("'").startswith(('torch', 'torchvision'))
            for arg in line.split()), line
    (deps, ) = command_lines(text, f'-r {wh}/requirements.txt')
    assert f'--find-links {wh} -c {wh}/constraints.txt' in deps
    assert f'-c {logs}/keep-torch.txt' in deps
    (xtco, ) = command_lines(text, "'xtcocotools>=1.14'")
    assert '--no-build-isolation' in xtco and '--no-cache-dir' in xtco
    assert "sed -i 's/-std=c++17/-std=c++20/g'" in text
    (build, ) = command_lines(text, ' wheel --no-index ')
    assert build.startswith('    env MMCV_WITH_OPS=1 FORCE_CUDA=0 ')
    assert '--no-build-isolation' in build
    (mmpose, ) = command_lines(text, 'mmpose==1.3.2')
    assert '--no-deps' in mmpose
    (editable, ) = command_lines(text, f'-e {ROOT}')
    assert '--no-deps --no-build-isolation' in editable
    assert 'import glid_mm, mmcv.ops' in text
    assert not (tmp_path / 'cache').exists()


@pytest.mark.skipif(
    os.environ.get('GLID_MM_NETWORK_TESTS') != '1',
    reason='downloads ~170 MB from PyPI; set GLID_MM_NETWORK_TESTS=1')
def test_build_real_cp312_wheelhouse(tmp_path):
    out = tmp_path / 'wh'
    res = run(
        BUILD,
        '--python-version',
        '3.12',
        '--platform',
        'manylinux_2_28_x86_64',
        '--out',
        str(out),
        env=dict(GLID_MM_LOG_DIR=str(tmp_path / 'logs')),
        timeout=1800)
    assert res.returncode == 0, res.stdout + res.stderr
    files = sorted(os.listdir(out))
    assert 'mmcv-2.1.0.tar.gz' in files
    assert 'xtcocotools-1.14.3.tar.gz' in files  # no cp312 wheel exists
    assert any(f.startswith('mmpose-1.3.2-') for f in files)
    assert any(f.startswith('numpy-2.') for f in files)
    assert not any(
        f.startswith(('torch', 'nvidia', 'triton', 'chumpy')) for f in files)
    for f in files:
        if f.endswith('.whl'):
            tag = f.split('-')[-3]  # python tag
            assert tag.startswith(('py3', 'py2.py3', 'cp312', 'cp3')), f
    manifest = (out / 'manifest.txt').read_text()
    assert all(f in manifest for f in files if f.endswith(('.whl', '.gz')))
    subprocess.run(['sha256sum', '--quiet', '-c', 'SHA256SUMS'],
                   cwd=out,
                   check=True)
