"""Configs are plain data, and every config family is documented.

(a) No config under configs/ defines a function or lambda, imports
    anything or calls ``Config.fromfile``: mmengine dumps, merges and
    overrides (``--cfg-options``) only the data, so logic in a config is
    lost in the work dir's copy and cannot be overridden. Logic belongs in
    a registered component (e.g. GPPF task configs named by path, read by
    TaskConfigRunner when the runner is built:
    glid_mm/utils/gppf_task_configs.py).
(b) Each family folder has a README.md and an OpenMMLab metafile.yml
    (model-index format) whose ``Config:`` paths exist and list every config
    of the folder (``_base_`` excluded); the README names every config.
(c) model-index.yml at the repository root imports the four metafiles.
"""
import ast
import glob
import os.path as osp

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAMILIES = ('glid', 'gppf', 'lit_decoder', 'm3i')
CONFIGS = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))


def _family_configs(family):
    """configs/<family>/**/*.py without _base_ folders, repo-relative."""
    return sorted(
        c for c in CONFIGS
        if c.startswith(f'configs/{family}/') and '_base_' not in c.split('/'))


def _not_plain_data(source: str):
    """``(line, what)`` of every function, lambda, import and
    ``fromfile`` call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node.lineno, f'def {node.name}'))
        elif isinstance(node, ast.Lambda):
            found.append((node.lineno, 'lambda'))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node.lineno, 'import'))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(
                func, 'id', None)
            if name == 'fromfile':
                found.append((node.lineno, 'fromfile call'))
    return sorted(found)


def test_configs_found():
    assert len(CONFIGS) > 40
    for family in FAMILIES:
        assert _family_configs(family), family


@pytest.mark.parametrize('path', CONFIGS)
def test_config_is_plain_data(path):
    with open(osp.join(ROOT, path), encoding='utf-8') as f:
        found = _not_plain_data(f.read())
    assert not found, (
        f'{path} is not plain data: ' + ', '.join(f'line {line}: {what}'
                                                  for line, what in found) +
        ' (write the values out, inherit with _base_, or move the logic '
        'into a registered component)')


@pytest.mark.parametrize('source, expected', [
    ('x = dict(a=1)\nlambda_one2many = 1.0\n', []),
    ('def f():\n    pass\n', [(1, 'def f')]),
    ('y = (lambda a: a)(1)\n', [(1, 'lambda')]),
    ('import os\nfrom mmengine import Config\n', [(1, 'import'),
                                                  (2, 'import')]),
    ('c = Config.fromfile("x.py")\n', [(1, 'fromfile call')]),
])
def test_checker(source, expected):
    assert _not_plain_data(source) == expected


def _metafile(family):
    with open(osp.join(ROOT, 'configs', family, 'metafile.yml')) as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize('family', FAMILIES)
def test_family_has_readme_and_metafile(family):
    for name in ('README.md', 'metafile.yml'):
        assert osp.isfile(osp.join(ROOT, 'configs', family, name)), \
            f'configs/{family}/{name} is missing'


@pytest.mark.parametrize('family', FAMILIES)
def test_metafile_lists_every_config(family):
    meta = _metafile(family)
    collections = meta.get('Collections')
    assert collections, f'configs/{family}/metafile.yml has no Collections'
    names = set()
    for coll in collections:
        assert coll.get('Name') and 'Metadata' in coll, coll
        paper = coll.get('Paper') or {}
        assert paper.get('URL', '').startswith('https://'), coll['Name']
        assert paper.get('Title'), coll['Name']
        assert osp.isfile(osp.join(ROOT, coll['README'])), coll['README']
        names.add(coll['Name'])
    listed = []
    model_names = []
    for model in meta.get('Models') or []:
        for key in ('Name', 'In Collection', 'Config', 'Metadata'):
            assert key in model, (family, model.get('Name'), key)
        assert model['In Collection'] in names, model['Name']
        assert osp.isfile(osp.join(ROOT, model['Config'])), \
            f'{family}: {model["Name"]}: no such config {model["Config"]}'
        assert isinstance(model.get('Results', []), list), model['Name']
        listed.append(model['Config'])
        model_names.append(model['Name'])
    assert len(model_names) == len(set(model_names)), 'duplicate Names'
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    missing = sorted(set(_family_configs(family)) - set(listed))
    assert not missing, f'configs/{family}/metafile.yml lacks {missing}'
    outside = sorted(c for c in listed if c not in _family_configs(family))
    assert not outside, f'configs/{family}/metafile.yml lists {outside}'


@pytest.mark.parametrize('family', FAMILIES)
def test_readme_names_every_config(family):
    with open(osp.join(ROOT, 'configs', family, 'README.md')) as f:
        text = f.read()
    missing = [
        c for c in _family_configs(family) if osp.basename(c) not in text
    ]
    assert not missing, f'configs/{family}/README.md does not name {missing}'


def test_model_index_imports_the_metafiles():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    imports = index.get('Import') or []
    assert sorted(imports) == sorted(f'configs/{family}/metafile.yml'
                                     for family in FAMILIES)
    for path in imports:
        assert osp.isfile(osp.join(ROOT, path)), path
