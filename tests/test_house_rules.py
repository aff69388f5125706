"""House rules a newcomer relies on, checked on the source (issue 24):

- no ``sys.path`` insertion anywhere (``glid_tools`` is installed with the
  project; test helpers live in ``tests/glid_test_helpers``, on pytest's
  ``pythonpath``);
- no patched toolbox global: library and tools code never assigns to an
  attribute of a module imported from mmengine / mmcv / mmdet / mmseg /
  mmpose / mmpretrain (override a method of a subclass instead);
- ``glid_mm.utils`` imports nothing from the layers above it
  (``glid_mm.engine``, ``glid_mm.models``, ...), and no import circle runs
  between ``glid_mm``'s top-level subpackages.
"""
import ast
import os
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLBOXES = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpose', 'mmpretrain')


def _python_files(*tops):
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(osp.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if not d.startswith('.')]
            for name in sorted(filenames):
                if name.endswith('.py'):
                    path = osp.join(dirpath, name)
                    yield osp.relpath(path, ROOT), path


def _tree(path):
    with open(path, encoding='utf-8') as f:
        return ast.parse(f.read(), path)


def _is_sys_path_change(node) -> bool:
    """``sys.path.insert(...)`` / ``append`` / ``extend`` / ``[:] =``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        target = node.func.value
        return (node.func.attr in ('insert', 'append', 'extend')
                and isinstance(target, ast.Attribute) and target.attr == 'path'
                and isinstance(target.value, ast.Name)
                and target.value.id == 'sys')
    return False


def test_no_sys_path_insertion():
    found = [
        f'{rel}:{node.lineno}'
        for rel, path in _python_files('glid_mm', 'tools', 'tests', 'configs')
        for node in ast.walk(_tree(path)) if _is_sys_path_change(node)
    ]
    assert not found, ('sys.path changed at ' + ', '.join(found) +
                       ': import glid_tools / glid_test_helpers instead')


def _toolbox_module_names(tree) -> set:
    """Local names bound to toolbox modules (``import mmdet.x as m``,
    ``from mmdet.models.dense_heads import mask2former_head``: any
    imported name that is a module of a toolbox)."""
    import importlib.util
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] in TOOLBOXES:
                    names.add(alias.asname or alias.name.split('.')[0])
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split('.')[0] in TOOLBOXES:
            for alias in node.names:
                full = f'{node.module}.{alias.name}'
                try:
                    is_module = importlib.util.find_spec(full) is not None
                except (ImportError, ValueError):
                    is_module = False
                if is_module:
                    names.add(alias.asname or alias.name)
    return names


def _patched_globals(tree) -> list:
    modules = _toolbox_module_names(tree)
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(
                node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Call) and isinstance(
                node.func, ast.Name) and node.func.id == 'setattr' and \
                node.args:
            targets = [ast.Attribute(value=node.args[0], attr='?')]
            targets[0].lineno = node.lineno
        for target in targets:
            base = target
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(target, ast.Attribute) and isinstance(
                    base, ast.Name) and base.id in modules:
                found.append(f'{node.lineno}: {ast.unparse(target)}')
    return found


def test_rule_finds_a_patched_toolbox_global():
    """The check itself: the monkey-patch this rule was written against
    (issue 24, item 3) is found; a local attribute is not."""
    bad = ast.parse('from mmdet.models.dense_heads import mask2former_head\n'
                    'mask2former_head.reduce_mean = lambda t: t\n'
                    'import mmdet.utils as u\n'
                    'setattr(u, "reduce_mean", None)\n')
    assert len(_patched_globals(bad)) == 2
    good = ast.parse('from mmdet.models.dense_heads import Mask2FormerHead\n'
                     'class H(Mask2FormerHead):\n'
                     '    def f(self):\n'
                     '        self.x = 1\n')
    assert _patched_globals(good) == []


@pytest.mark.parametrize('top', ['glid_mm', 'tools'])
def test_no_patched_toolbox_global(top):
    found = [
        f'{rel}:{hit}' for rel, path in _python_files(top)
        for hit in _patched_globals(_tree(path))
    ]
    assert not found, 'toolbox module attribute assigned at ' + \
        ', '.join(found) + ': override a method of a subclass instead'


def _subpackage_imports() -> dict:
    """``{subpackage: {imported subpackage: [file:line]}}`` over every
    import in ``glid_mm`` (module level and inside functions)."""
    edges = {}
    for rel, path in _python_files('glid_mm'):
        parts = rel[:-3].split(os.sep)
        if len(parts) < 3:
            continue  # glid_mm/__init__.py, registry.py, version.py
        src = parts[1]
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                bits = name.split('.')
                if bits[0] != 'glid_mm':
                    continue
                dst = bits[1] if len(bits) > 1 else 'glid_mm'
                if dst != src:
                    edges.setdefault(src, {}).setdefault(
                        dst, []).append(f'{rel}:{node.lineno}')
    return edges


def test_utils_imports_nothing_above_it():
    """``glid_mm.utils`` is the bottom layer: it may use the registry and
    the version, never the package that imports it, the engine, models,
    datasets or evaluation (the load report, the converters' old
    ``load_report`` and ``build_runner`` made such arrows)."""
    upward = {
        dst: where
        for dst, where in _subpackage_imports().get('utils', {}).items()
        if dst not in ('registry', 'version')
    }
    assert not upward, f'glid_mm.utils imports upward: {upward}'


def test_no_import_circle_between_subpackages():
    edges = {
        src: set(dsts) - {'registry', 'version'}
        for src, dsts in _subpackage_imports().items()
    }
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 'open':
                raise AssertionError('import circle: ' +
                                     ' -> '.join(path + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 'done'

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_every_package_lists_its_public_names():
    """Each ``glid_mm`` package has an ``__all__`` naming what it exports:
    every glid_mm class or function it imports (the conditional-import
    helper ``available`` aside), and nothing it lacks."""
    import importlib
    import inspect
    import pkgutil

    import glid_mm
    wrong = []
    for info in pkgutil.walk_packages(glid_mm.__path__, 'glid_mm.'):
        if not info.ispkg:
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, '__all__', None)
        if names is None:
            wrong.append(f'{info.name}: no __all__')
            continue
        absent = [n for n in names if not hasattr(module, n)]
        unlisted = [
            n for n, v in vars(module).items()
            if not n.startswith('_') and n not in names and (
                inspect.isclass(v) or inspect.isfunction(v))
            and getattr(v, '__module__', '').startswith('glid_mm.')
            and v.__module__ != 'glid_mm.registry'
        ]
        if absent or unlisted:
            wrong.append(f'{info.name}: __all__ names missing attributes '
                         f'{absent}, lacks {unlisted}')
    assert not wrong, '\n'.join(wrong)
