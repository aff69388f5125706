"""Check that the installed OpenMMLab stack is the one glid_mm supports.

``import glid_mm`` calls :func:`check_environment` before it imports any
toolbox, so a clash is reported as one message that names the package at
fault and the command that fixes it, instead of an ``ImportError`` deep inside
mmdet or an ``AssertionError`` from its own mmcv check.
"""
import os
from importlib import import_module, metadata
from typing import Dict, List, Tuple

from packaging.version import Version

#: distribution name -> (import name, minimum version, exclusive maximum).
#: Keep in sync with ``requirements/mminstall.txt`` (a test checks this).
REQUIRED: Dict[str, Tuple[str, str, str]] = {
    'mmengine': ('mmengine', '0.10.7', '0.11.0'),
    'mmcv': ('mmcv', '2.1.0', '2.2.0'),
    'mmdet': ('mmdet', '3.3.0', '3.4.0'),
    'mmsegmentation': ('mmseg', '1.2.2', '1.3.0'),
    'mmpose': ('mmpose', '1.3.2', '1.4.0'),
    'mmpretrain': ('mmpretrain', '1.2.0', '1.3.0'),
}

#: toolboxes glid_mm plugs into: any subset may be installed (at least
#: one); those installed must be in range
TOOLBOX_DISTS = ('mmdet', 'mmsegmentation', 'mmpose', 'mmpretrain')

SETUP_HINT = 'run `bash tools/setup_env.sh` in the glid_mm checkout'
SKIP_ENV = 'GLID_MM_SKIP_VERSION_CHECK'


class EnvironmentMismatchError(ImportError):
    """Raised by ``import glid_mm`` when the OpenMMLab stack does not fit."""


def find_version_problems(
        required: Dict[str, Tuple[str, str, str]] = None) -> List[str]:
    """Return one human-readable line per package outside its range.

    mmengine and mmcv are required; of the toolboxes
    (:data:`TOOLBOX_DISTS`) any subset may be installed, at least one.
    """
    required = REQUIRED if required is None else required
    problems, missing_toolboxes = [], []
    for dist, (_, low, high) in required.items():
        spec = f'{dist}>={low},<{high}'
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if dist in TOOLBOX_DISTS:
                missing_toolboxes.append(spec)
                continue
            problems.append(f'{dist} is not installed; need {spec} '
                            f'(fix: pip install "{spec}" or {SETUP_HINT})')
            continue
        if not Version(low) <= Version(found) < Version(high):
            problems.append(f'{dist} {found} is installed; need {spec} '
                            f'(fix: pip install "{spec}" or {SETUP_HINT})')
    toolboxes = [d for d in required if d in TOOLBOX_DISTS]
    if toolboxes and len(missing_toolboxes) == len(toolboxes):
        problems.append('none of the toolboxes is installed; need at least '
                        'one of ' + ', '.join(missing_toolboxes) +
                        f' (fix: {SETUP_HINT})')
    return problems


def find_mmcv_ops_problem() -> List[str]:
    """Return a problem line if mmcv's compiled ops (``mmcv._ext``) fail."""
    try:
        import_module('mmcv._ext')
    except Exception as exc:  # ImportError, OSError (undefined symbol), ...
        return [
            f'mmcv is installed without working compiled ops '
            f'(import mmcv._ext failed: {exc.__class__.__name__}: {exc}); '
            'mmcv-lite or a wheel built against another torch is the usual '
            f'cause (fix: {SETUP_HINT}, which builds mmcv 2.1.0 with '
            'MMCV_WITH_OPS=1 against the installed torch)'
        ]
    return []


def check_environment() -> None:
    """Raise :class:`EnvironmentMismatchError` listing every problem found.

    Set ``GLID_MM_SKIP_VERSION_CHECK=1`` to skip the check (at your own risk,
    e.g. to try a newer toolbox release).
    """
    if os.environ.get(SKIP_ENV, '') not in ('', '0'):
        return
    problems = find_version_problems()
    if not any(p.startswith('mmcv ') for p in problems):
        problems += find_mmcv_ops_problem()
    if problems:
        raise EnvironmentMismatchError(
            'glid_mm cannot run with the installed OpenMMLab stack:\n  - ' +
            '\n  - '.join(problems) +
            f'\n(set {SKIP_ENV}=1 to bypass this check at your own risk)')
