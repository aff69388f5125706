"""glid_mm installs like a package: the wheel, its ``.mim`` folder, and
``_base_ = 'glid_mm::...'`` from an install outside the checkout.

Everything is built from a copy of the checkout in a temporary folder
(``pip wheel`` builds in the source tree and would leave ``build/``,
``glid_mm.egg-info`` and fresh ``glid_mm/.mim`` copies in the checkout);
nothing is downloaded (``--no-deps --no-build-isolation``). The slow tests
take about 30 s together.
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEMSEG = 'glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'
MIM = 'glid_mm/.mim/'
KNOWN_FILES = (
    MIM + 'model-index.yml',
    MIM + 'configs/' + SEMSEG,
    MIM + 'configs/glid/metafile.yml',
    MIM + 'configs/gppf/metafile.yml',
    MIM + 'configs/lit_decoder/metafile.yml',
    MIM + 'configs/m3i/metafile.yml',
    MIM + 'configs/_base_/runtimes/mmseg.py',
    MIM + 'configs/glid/glid-det_swin-nano_1xb8-2k_coco128-320x240.py',
    MIM + 'tools/train.py',
    MIM + 'tools/test.py',
    'glid_mm/__init__.py',
    'glid_mm/utils/mim.py',
)
# junk that never lives in the source tree: build outputs, the venv, data
_SKIP = ('.git', '.venv', 'build', 'dist', 'work_dirs', 'wheelhouse',
         'device_data', '.setup_logs', '.pytest_cache', '__pycache__')


def _run(cmd, cwd, env=None, timeout=300):
    res = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, (
        f'{" ".join(map(str, cmd))} failed ({res.returncode}):\n'
        f'{res.stdout[-3000:]}\n{res.stderr[-3000:]}')
    return res


def _source_files():
    """The checkout's files as a clone would have them (tracked and new,
    not ignored), relative to ROOT; a walk without git."""
    if osp.isdir(osp.join(ROOT, '.git')) and shutil.which('git'):
        res = subprocess.run([
            'git', 'ls-files', '-z', '--cached', '--others',
            '--exclude-standard'
        ],
                             cwd=ROOT,
                             capture_output=True,
                             text=True)
        if res.returncode == 0:
            return [
                f for f in res.stdout.split('\0')
                if f and osp.isfile(osp.join(ROOT, f))
            ]
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [
            d for d in dirnames
            if d not in _SKIP and d != '.mim' and not d.endswith('.egg-info')
        ]
        files += [
            osp.relpath(osp.join(dirpath, f), ROOT) for f in filenames
            if not f.endswith('.pyc')
        ]
    return files


def _wheel_names(path):
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """Copy of the checkout, the wheel built from it and the wheel built
    from its sdist."""
    tmp = tmp_path_factory.mktemp('packaging')
    src = tmp / 'src'
    for rel in _source_files():
        if rel.split('/')[0] in _SKIP or '/.mim/' in f'/{rel}':
            continue
        os.makedirs(osp.dirname(src / rel), exist_ok=True)
        shutil.copy2(osp.join(ROOT, rel), src / rel)
    # what a developer's checkout holds after `pip install -e .`: links
    # into the checkout, plus a stray file; neither may reach the wheel
    os.makedirs(src / 'glid_mm' / '.mim')
    os.symlink(
        osp.join('..', '..', 'configs'), src / 'glid_mm' / '.mim' / 'configs')
    (src / 'glid_mm' / '.mim' / 'STALE.txt').write_text('stale')

    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
    _run(
        pip + [
            'wheel', '.', '--no-deps', '--no-build-isolation', '-w',
            str(tmp / 'dist')
        ],
        cwd=src)
    wheel, = glob.glob(str(tmp / 'dist' / 'glid_mm-*.whl'))

    _run([sys.executable, 'setup.py', '-q', 'sdist', '-d',
          str(tmp / 'sdist')],
         cwd=src)
    sdist, = glob.glob(str(tmp / 'sdist' / 'glid_mm-*.tar.gz'))
    _run(
        pip + [
            'wheel', sdist, '--no-deps', '--no-build-isolation', '-w',
            str(tmp / 'dist_from_sdist')
        ],
        cwd=tmp)
    wheel_from_sdist, = glob.glob(
        str(tmp / 'dist_from_sdist' / 'glid_mm-*.whl'))
    return dict(
        tmp=tmp,
        src=src,
        wheel=wheel,
        sdist=sdist,
        wheel_from_sdist=wheel_from_sdist)


@pytest.fixture(scope='module')
def site(built):
    """The wheel installed with ``pip install --target``."""
    target = built['tmp'] / 'site'
    _run([
        sys.executable, '-m', 'pip', '--disable-pip-version-check', 'install',
        '--no-deps', '--no-index', '--target',
        str(target), built['wheel']
    ],
         cwd=built['tmp'])
    return target


@pytest.mark.slow
def test_wheel_files(built):
    names = _wheel_names(built['wheel'])
    missing = [f for f in KNOWN_FILES if f not in names]
    assert not missing, missing
    tops = {n.split('/')[0] for n in names}
    # the library and the scripts' shared code (tools/glid_tools, so that
    # the installed scripts import it); no tests/, tools/, configs/
    assert tops == {
        'glid_mm', 'glid_tools',
        osp.basename(built['wheel']).split('-py')[0] + '.dist-info'
    }, tops
    shared = {
        n[len('glid_tools/'):]
        for n in names if n.startswith('glid_tools/')
    }
    assert shared == {
        osp.relpath(p, built['src'] / 'tools' / 'glid_tools').replace(
            os.sep, '/')
        for p in glob.glob(
            str(built['src'] / 'tools' / 'glid_tools' / '**' / '*.py'),
            recursive=True)
    }
    bad = [n for n in names if '__pycache__' in n or n.endswith('.pyc')]
    assert not bad, bad
    assert MIM + 'STALE.txt' not in names  # glid_mm/.mim is never shipped
    # every config and tool of the checkout, nothing else
    src = built['src']
    for folder in ('configs', 'tools'):
        want = {
            osp.relpath(p, src).replace(os.sep, '/')
            for p in glob.glob(str(src / folder / '**' / '*'), recursive=True)
            if osp.isfile(p) and '__pycache__' not in p
        }
        got = {n[len(MIM):] for n in names if n.startswith(MIM + folder + '/')}
        assert got == want, (sorted(got ^ want))


@pytest.mark.slow
def test_sdist_builds_the_same_wheel(built):
    with tarfile.open(built['sdist']) as tf:
        members = [m.name.split('/', 1)[-1] for m in tf.getmembers()]
    for f in ('setup.py', 'MANIFEST.in', 'model-index.yml', 'README.md',
              'requirements/runtime.txt', 'configs/' + SEMSEG,
              'tools/train.py'):
        assert f in members, f
    assert not any('/.mim/' in f'/{m}' for m in members)

    def pkg(path):
        return sorted(
            n for n in _wheel_names(path) if n.startswith('glid_mm/'))

    assert pkg(built['wheel_from_sdist']) == pkg(built['wheel'])


@pytest.mark.slow
def test_model_index_in_wheel(site):
    """What ``mim search`` and mmengine's ``glid_mm::`` lookup read:
    model-index.yml -> metafiles -> configs, all inside ``.mim``."""
    mim = site / 'glid_mm' / '.mim'
    with open(mim / 'model-index.yml') as f:
        index = yaml.safe_load(f)
    assert len(index['Import']) == 4
    names = set()
    for meta in index['Import']:
        with open(mim / meta) as f:
            models = yaml.safe_load(f)['Models']
        assert models, meta
        for model in models:
            assert model['Name'] not in names, model['Name']
            names.add(model['Name'])
            assert osp.isfile(mim / model['Config']), model['Config']
    assert 'glid-semseg_swin-nano_1xb8-2k_camvid-128x160' in names


# Runs in a fresh interpreter whose cwd is outside the checkout, with only
# the --target install on PYTHONPATH (the venv's editable glid_mm comes
# after it on sys.path and must not be the one imported).
CHECK = r'''
import os.path as osp
import sys
import warnings

warnings.simplefilter('ignore')
site = osp.realpath(sys.argv[1])

import glid_mm  # noqa: E402

assert osp.realpath(glid_mm.__file__).startswith(site + osp.sep), \
    glid_mm.__file__

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from glid_mm.utils.mim import load_config  # noqa: E402

with open('user_cfg.py', 'w') as f:
    f.write("_base_ = 'glid_mm::SEMSEG'\n"
            "model = dict(init_cfg=None)\n")
cfg = load_config('user_cfg.py')
base, scope = Config._get_cfg_path('glid_mm::SEMSEG', 'user_cfg.py')
assert osp.realpath(base) == osp.join(
    site, 'glid_mm', '.mim', 'configs', 'SEMSEG'), base
assert cfg.default_scope == 'mmseg', cfg.default_scope
assert '_scope_' not in cfg.model, cfg.model.get('_scope_')
assert cfg.model.type == 'GLIDEncoderDecoder', cfg.model.type
assert cfg.model.backbone.arch.embed_dims == 32

init_default_scope(cfg.default_scope)
from mmseg.registry import MODELS  # noqa: E402

model = MODELS.build(cfg.model).eval()
assert type(model).__module__.startswith('glid_mm.'), type(model)
with torch.no_grad():
    out = model(torch.rand(1, 3, 128, 160), mode='tensor')
print('OK', type(model).__name__, type(out).__name__)
'''.replace('SEMSEG', SEMSEG)


def _outside_env(*paths):
    env = {
        k: v
        for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')
    }
    env['PYTHONPATH'] = os.pathsep.join(map(str, paths))
    return env


@pytest.mark.slow
def test_glid_mm_base_from_installed_wheel(site, tmp_path):
    assert not str(tmp_path).startswith(ROOT + os.sep)
    res = _run(
        [sys.executable, '-c', CHECK, str(site)],
        cwd=tmp_path,
        env=_outside_env(site),
        timeout=240)
    assert 'OK GLIDEncoderDecoder' in res.stdout, res.stdout


@pytest.mark.filterwarnings('ignore:pkg_resources is deprecated')
def test_glid_mm_base_from_editable_checkout():
    """The project's own set-up (tools/setup_env.sh: ``pip install -e .``):
    ``glid_mm::`` paths resolve to the checkout's configs through the
    links setup.py makes in ``glid_mm/.mim``."""
    from mmengine.config import Config

    import glid_mm
    from glid_mm.utils.mim import register_config_package

    if not osp.realpath(
            glid_mm.__file__).startswith(osp.realpath(ROOT) + os.sep):
        pytest.skip(f'glid_mm is imported from {glid_mm.__file__}, '
                    'not from this checkout')
    assert osp.isfile(osp.join(ROOT, 'glid_mm', '.mim', 'model-index.yml')), (
        'glid_mm/.mim is missing: reinstall the checkout with '
        '`pip install -e . --no-deps --no-build-isolation` '
        '(or bash tools/setup_env.sh)')
    register_config_package()
    path, scope = Config._get_cfg_path('glid_mm::' + SEMSEG,
                                       osp.join(ROOT, 'x.py'))
    assert scope == 'glid_mm'
    assert osp.realpath(path) == osp.join(
        osp.realpath(ROOT), 'configs', *SEMSEG.split('/'))


def test_drop_package_scope():
    from mmengine.config import Config

    from glid_mm.utils.mim import drop_package_scope

    cfg = Config(
        dict(
            model=dict(
                type='A',
                _scope_='glid_mm',
                head=dict(type='B', _scope_='glid_mm')),
            hooks=[
                dict(type='H', _scope_='glid_mm'),
                dict(type='L', _scope_='mmseg')
            ],
            pipe=(dict(type='T', _scope_='glid_mm'), )))
    assert drop_package_scope(cfg) is cfg
    assert '_scope_' not in cfg.model and '_scope_' not in cfg.model.head
    assert '_scope_' not in cfg.hooks[0]
    assert cfg.hooks[1]._scope_ == 'mmseg'
    assert '_scope_' not in cfg.pipe[0]
