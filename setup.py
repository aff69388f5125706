import os
import os.path as osp
import platform
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))

#: what OpenMMLab's MIM expects in ``<package>/.mim`` (as mmdet, mmseg,
#: mmpretrain ship it): the configs (so that ``_base_ = 'glid_mm::...'``
#: resolves against the installed package), the tools and the model index
#: (``mim search glid_mm``; mmengine reads it for every ``glid_mm::`` path)
MIM_FILES = ('configs', 'tools', 'model-index.yml')
MIM_DIR = osp.join('glid_mm', '.mim')
_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.pyo')


def readme():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version():
    scope = {}
    path = osp.join(ROOT, 'glid_mm', 'version.py')
    with open(path, encoding='utf-8') as f:
        exec(compile(f.read(), path, 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname):
    reqs = []
    with open(osp.join(ROOT, fname), encoding='utf-8') as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def _remove(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)  # a link is removed, never followed
    elif osp.isdir(path):
        shutil.rmtree(path)


def add_mim_extension(mim_dir, mode):
    """Put :data:`MIM_FILES` of the project root into ``mim_dir``.

    ``mode='symlink'``: relative links (editable installs: the package is
    the checkout, edits to ``configs/`` show at once); ``mode='copy'``:
    copies (wheels). Unlike mmdet's ``add_mim_extension``, copies go to the
    build directory only (:class:`BuildPyWithMim`), never into the
    checkout, so building a wheel leaves a developer's editable links alone
    and no stale copy of ``configs/`` is left in ``glid_mm/.mim``.
    """
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(mim_dir, name)
        if not osp.exists(src):
            raise FileNotFoundError(
                f'{src} is missing: glid_mm/.mim/{name} is built from it')
        _remove(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, osp.dirname(dst)), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=_IGNORE)
        else:
            shutil.copyfile(src, dst)


class BuildPyWithMim(build_py):
    """build_py that also writes ``glid_mm/.mim`` (copies) into build_lib.

    ``MANIFEST.in`` prunes ``glid_mm/.mim`` from the sources, so the links
    of an editable install in the checkout never reach a wheel; what a wheel
    ships is copied here, fresh at every build (stale files of an earlier
    build in ``build/lib`` are removed first).
    """

    def run(self):
        super().run()
        if not getattr(self, 'editable_mode', False):
            mim_dir = osp.join(self.build_lib, MIM_DIR)
            _remove(mim_dir)
            add_mim_extension(mim_dir, 'copy')


# Editable installs (`pip install -e .` runs `editable_wheel`; old pips and
# `python setup.py develop` run `develop`) use the checkout itself as the
# package: link glid_mm/.mim/* to the root's configs, tools, model index
# (copies on Windows, where links need privileges), as mmdet does.
if {'develop', 'editable_wheel'} & set(sys.argv[1:]):
    add_mim_extension(
        osp.join(ROOT, MIM_DIR),
        'copy' if platform.system() == 'Windows' else 'symlink')

setup(
    name='glid_mm',
    version=get_version(),
    description='GLID, GPPF, LiT-decoder and M3I for the OpenMMLab toolboxes',
    long_description=readme(),
    long_description_content_type='text/markdown',
    # glid_mm and its subpackages (the library), and glid_tools: the code
    # shared by the scripts under tools/ (benchmark runners, demos, study,
    # plots), installed from tools/glid_tools so that every script and test
    # imports it without touching sys.path; the library never imports it.
    # Configs and the scripts themselves ship as data under glid_mm/.mim.
    packages=find_packages(include=('glid_mm', 'glid_mm.*')) + ['glid_tools'] +
    [
        'glid_tools.' + p
        for p in find_packages(osp.join(ROOT, 'tools', 'glid_tools'))
    ],
    package_dir={'glid_tools': 'tools/glid_tools'},
    include_package_data=True,
    cmdclass={'build_py': BuildPyWithMim},
    python_requires='>=3.9',
    license='Apache License 2.0',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'mim': parse_requirements('requirements/mminstall.txt'),
        'tests': parse_requirements('requirements/tests.txt'),
    },
    zip_safe=False)
