import re
from importlib import metadata

import pytest

from glid_mm.utils import version_guard
from glid_mm.utils.version_guard import (REQUIRED, EnvironmentMismatchError,
                                         check_environment,
                                         find_version_problems)


def test_installed_stack_passes():
    assert find_version_problems() == []
    check_environment()  # must not raise


def test_ranges_match_mminstall(project_root):
    """The guard and requirements/mminstall.txt must not drift apart."""
    with open(f'{project_root}/requirements/mminstall.txt') as f:
        lines = [ln.strip() for ln in f if ln.strip() and ln[0] != '#']
    parsed = {}
    for ln in lines:
        m = re.fullmatch(r'([\w-]+)>=([\d.]+),<([\d.]+)', ln)
        assert m, f'unexpected requirement line {ln!r}'
        parsed[m.group(1)] = (m.group(2), m.group(3))
    assert parsed == {k: (v[1], v[2]) for k, v in REQUIRED.items()}


def test_wrong_version_names_package_and_fix(monkeypatch):
    real = metadata.version

    def fake(dist):
        return '3.1.0' if dist == 'mmdet' else real(dist)

    monkeypatch.setattr(version_guard.metadata, 'version', fake)
    with pytest.raises(EnvironmentMismatchError) as err:
        check_environment()
    msg = str(err.value)
    assert 'mmdet 3.1.0 is installed; need mmdet>=3.3.0,<3.4.0' in msg
    assert 'pip install "mmdet>=3.3.0,<3.4.0"' in msg
    assert 'mmseg' not in msg  # only the package at fault is named


def _hide(monkeypatch, *dists):
    real = metadata.version

    def fake(dist):
        if dist in dists:
            raise metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(version_guard.metadata, 'version', fake)


def test_missing_package(monkeypatch):
    _hide(monkeypatch, 'mmcv')
    with pytest.raises(EnvironmentMismatchError, match='mmcv is not inst'):
        check_environment()


def test_toolboxes_are_optional_but_one_is_needed(monkeypatch):
    _hide(monkeypatch, 'mmpose', 'mmsegmentation')
    assert find_version_problems() == []
    _hide(monkeypatch, 'mmpose', 'mmsegmentation', 'mmdet', 'mmpretrain')
    with pytest.raises(
            EnvironmentMismatchError,
            match='none of the toolboxes is installed'):
        check_environment()


def test_broken_mmcv_ops(monkeypatch):

    def fake_import(name):
        raise ImportError('undefined symbol: _ZN3c10')

    monkeypatch.setattr(version_guard, 'import_module', fake_import)
    with pytest.raises(EnvironmentMismatchError) as err:
        check_environment()
    assert 'mmcv is installed without working compiled ops' in str(err.value)
    assert 'undefined symbol' in str(err.value)


def test_skip_env(monkeypatch):
    monkeypatch.setattr(version_guard.metadata, 'version', lambda d: '0.0.1')
    monkeypatch.setenv('GLID_MM_SKIP_VERSION_CHECK', '1')
    check_environment()
    monkeypatch.setenv('GLID_MM_SKIP_VERSION_CHECK', '0')
    with pytest.raises(EnvironmentMismatchError):
        check_environment()
