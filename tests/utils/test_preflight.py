"""Pre-flight of tools/train.py and tools/test.py (glid_mm/utils/preflight.py
and glid_mm.engine.runner.checked_run.py).

tests/utils/test_data_checks.py covers the annotation checks one by one and
``check_built_runner``; here: what :func:`check_inputs` looks at (which
loaders, data roots before annotation files, task names only with
``tasks``, task configs named by path), :func:`build_runner`, and
:func:`run_checked` turning registry and unpickling errors into the
explained ones of glid_mm/utils/errors.py while passing others through.
Configs are tiny and synthetic, in ``tmp_path``.
"""
import json
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import glid_mm  # noqa: F401
import glid_mm.engine.runner.checked_run as checked
from glid_mm.engine.runner import build_runner, run_checked
from glid_mm.utils.data_checks import AnnotationError
from glid_mm.utils.preflight import check_inputs


def _loader(root, ann_file='ann.json'):
    return dict(
        batch_size=1,
        dataset=dict(
            type='CocoDataset', data_root=str(root), ann_file=ann_file))


def _coco(root, text=None):
    """A valid one-box COCO file at ``root/ann.json`` (or ``text``)."""
    root.mkdir(parents=True, exist_ok=True)
    data = dict(
        images=[dict(id=1, file_name='a.jpg', width=8, height=8)],
        annotations=[
            dict(
                id=1,
                image_id=1,
                category_id=1,
                bbox=[0, 0, 4, 4],
                area=16,
                iscrowd=0)
        ],
        categories=[dict(id=1, name='thing')])
    path = root / 'ann.json'
    path.write_text(json.dumps(data) if text is None else text)
    return str(path)


def _cfg(tmp_path, **loaders):
    return Config(
        dict(default_scope='mmdet', work_dir=str(tmp_path / 'w'), **loaders))


# ----------------------------------------------------------------------
# check_inputs
# ----------------------------------------------------------------------
def test_good_inputs_pass(tmp_path):
    _coco(tmp_path / 'd')
    cfg = _cfg(
        tmp_path,
        train_dataloader=_loader(tmp_path / 'd'),
        val_dataloader=_loader(tmp_path / 'd'))
    check_inputs(cfg, keys=('train_dataloader', 'val_dataloader'))


def test_missing_data_root_is_named(tmp_path):
    missing = tmp_path / 'nowhere'
    cfg = _cfg(tmp_path, train_dataloader=_loader(missing))
    with pytest.raises(FileNotFoundError) as err:
        check_inputs(cfg, keys=('train_dataloader', ))
    msg = str(err.value)
    assert msg.startswith('data root not found:\n  - train_dataloader.'
                          f'dataset.data_root = {str(missing)!r}')
    assert 'GLID_MM_DATA' in msg and '--cfg-options' in msg


def test_data_roots_are_checked_before_annotation_files(tmp_path):
    """A missing root is reported as such, not as its missing json."""
    cfg = _cfg(tmp_path, train_dataloader=_loader(tmp_path / 'nowhere'))
    cfg.data_check = False  # annotation checks off: roots still checked
    with pytest.raises(FileNotFoundError, match='data root not found'):
        check_inputs(cfg, keys=('train_dataloader', ))


def test_only_the_named_loaders_are_checked(tmp_path):
    _coco(tmp_path / 'd')
    cfg = _cfg(
        tmp_path,
        train_dataloader=_loader(tmp_path / 'd'),
        val_dataloader=_loader(tmp_path / 'd', 'missing.json'),
        test_dataloader=_loader(tmp_path / 'nowhere'))
    check_inputs(cfg, keys=('train_dataloader', ))  # tools/train.py: no test
    with pytest.raises(
            FileNotFoundError, match=r'test_dataloader\.dataset\.data_root'):
        check_inputs(cfg, keys=('test_dataloader', ))
    with pytest.raises(
            FileNotFoundError,
            match=r'val_dataloader\.dataset\.ann_file: annotation file not '
            r'found: .*missing\.json'):
        check_inputs(cfg, keys=('train_dataloader', 'val_dataloader'))


def test_bad_annotation_file_is_named(tmp_path):
    path = _coco(tmp_path / 'd', text='{"images": [1, 2,')
    cfg = _cfg(tmp_path, train_dataloader=_loader(tmp_path / 'd'))
    with pytest.raises(AnnotationError) as err:
        check_inputs(cfg, keys=('train_dataloader', ))
    assert str(err.value).startswith(f'{path}: not valid JSON')
    cfg.data_check = False
    check_inputs(cfg, keys=('train_dataloader', ))


def _multi_task(tmp_path, loaders):
    return _cfg(
        tmp_path,
        model=dict(
            type='GPPFMultiTaskModel',
            tasks=dict(det=dict(type='RetinaNet'), cls=dict(type='X'))),
        train_dataloader=loaders)


def test_task_names_are_checked_only_with_tasks(tmp_path):
    _coco(tmp_path / 'd')
    cfg = _multi_task(tmp_path, dict(det=_loader(tmp_path / 'd')))
    with pytest.raises(
            KeyError,
            match=r"model.tasks \['cls'\] have no train_dataloader entry"):
        check_inputs(cfg, keys=('train_dataloader', ))
    check_inputs(cfg, keys=('train_dataloader', ), tasks=False)  # test.py


def test_task_configs_named_by_path_are_read_and_checked(tmp_path):
    """GPPF: ``dict(from_config=...)`` is resolved as the components will
    build it; the task config's data root is checked under the multi-task
    config's key; the config given is left as it is."""
    task = tmp_path / 'task.py'
    task.write_text(
        'default_scope = "mmdet"\n'
        f'train_dataloader = dict(batch_size=1, dataset=dict('
        f'type="CocoDataset", data_root={str(tmp_path / "gone")!r}, '
        'ann_file="ann.json"))\n')
    cfg = _multi_task(
        tmp_path,
        dict(det=dict(from_config=str(task)), cls=dict(from_config=str(task))))
    before = cfg.to_dict()
    with pytest.raises(FileNotFoundError) as err:
        check_inputs(cfg, keys=('train_dataloader', ))
    assert 'train_dataloader.det.dataset.data_root' in str(err.value)
    assert 'train_dataloader.cls.dataset.data_root' in str(err.value)
    assert cfg.to_dict() == before
    # the override of the reference is merged in before the check
    _coco(tmp_path / 'd')
    cfg.train_dataloader.det['dataset.data_root'] = str(tmp_path / 'd')
    cfg.train_dataloader.cls['dataset.data_root'] = str(tmp_path / 'd')
    check_inputs(cfg, keys=('train_dataloader', ))
    cfg.train_dataloader.det['from_config'] = str(tmp_path / 'none.py')
    with pytest.raises(
            FileNotFoundError,
            match='train_dataloader.det.from_config: task config '
            'not found'):
        check_inputs(cfg, keys=('train_dataloader', ))


# ----------------------------------------------------------------------
# build_runner
# ----------------------------------------------------------------------
@pytest.fixture
def calls(monkeypatch):
    """Records init_cpu_process_group and Runner.from_cfg, builds nothing."""
    seen = []
    monkeypatch.setattr(checked, 'init_cpu_process_group',
                        lambda cfg: seen.append(('init', cfg)))
    monkeypatch.setattr(
        Runner, 'from_cfg',
        classmethod(lambda cls, cfg: seen.append(
            ('build', cls.__name__)) or cls.__name__))
    return seen


@pytest.fixture
def custom_runner():
    """A runner_type registered for one test (never instantiated)."""

    class PreflightTestRunner(Runner):
        pass

    RUNNERS.register_module(module=PreflightTestRunner)
    yield 'PreflightTestRunner'
    RUNNERS._module_dict.pop('PreflightTestRunner', None)


def test_build_runner_sets_up_cpu_processes_first(calls):
    cfg = Config(dict(launcher='none'))
    assert build_runner(cfg) == 'Runner'
    assert calls == [('init', cfg), ('build', 'Runner')]


def test_build_runner_honours_runner_type(calls, custom_runner):
    cfg = Config(dict(runner_type=custom_runner))
    assert build_runner(cfg) == 'PreflightTestRunner'
    assert calls[0] == ('init', cfg)
    assert calls[1] == ('build', 'PreflightTestRunner')


# ----------------------------------------------------------------------
# run_checked
# ----------------------------------------------------------------------
class _Runner:

    def __init__(self, action=None):
        self.action = action
        self.log = []

    def train(self):
        self.log.append('train')
        return self.action() if self.action else 'trained'


def _raise(error):
    raise error


def _stub(monkeypatch, runner=None, error=None):

    def build(cfg):
        if error is not None:
            raise error
        return runner

    monkeypatch.setattr(checked, 'build_runner', build)


def test_run_checked_checks_then_runs_the_action(monkeypatch):
    runner = _Runner()
    _stub(monkeypatch, runner)
    cfg = Config(dict())

    def check(r, c):
        assert r is runner and c is cfg
        runner.log.append('check')

    assert run_checked(cfg, 'train', check) == (runner, 'trained')
    assert runner.log == ['check', 'train']
    assert run_checked(cfg, 'train') == (runner, 'trained')  # no check


def test_a_failing_check_stops_before_the_action(monkeypatch):
    runner = _Runner()
    _stub(monkeypatch, runner)

    def check(r, c):
        raise ValueError('train_dataloader: the dataset has no samples')

    with pytest.raises(ValueError, match='has no samples'):
        run_checked(Config(dict()), 'train', check)
    assert runner.log == []


def test_unknown_type_in_the_config_is_explained(tmp_path):
    """A real Runner: the typo in a nested model type becomes glid_mm's
    message with the close registered names."""
    cfg = Config(
        dict(
            default_scope='mmdet',
            work_dir=str(tmp_path),
            model=dict(
                type='RetinaNet',
                backbone=dict(type='ResNett', depth=18),
                neck=None,
                bbox_head=None)))
    with pytest.raises(KeyError) as err:
        run_checked(cfg, 'train')
    msg = str(err.value)
    assert "unknown model type 'ResNett' (default scope 'mmdet')" in msg
    assert 'ResNet' in msg.split('Close names in mmdet::model:')[1]
    assert 'ResNett is not in the mmdet::model registry' in str(
        err.value.__cause__)


@pytest.mark.parametrize('where', ['build', 'action'])
def test_registry_error_anywhere_is_explained(monkeypatch, where):
    error = KeyError('mmdet.CocoDatset is not in the mmdet::dataset '
                     'registry. Please check ...')
    if where == 'build':
        _stub(monkeypatch, error=error)
    else:
        _stub(monkeypatch, _Runner(action=lambda: _raise(error)))
    with pytest.raises(KeyError) as err:
        run_checked(Config(dict()), 'train')
    msg = str(err.value)
    assert "unknown dataset type 'mmdet.CocoDatset'" in msg
    assert 'CocoDataset' in msg.split('Close names')[1]
    assert err.value.__cause__ is error


def test_registry_error_without_close_names_says_what_to_import(monkeypatch):
    _stub(
        monkeypatch,
        error=KeyError('QwxzyFoo is not in the mmseg::model registry.'))
    with pytest.raises(
            KeyError,
            match='No close name is registered in '
            'mmseg::model; is the package that defines it in '
            'custom_imports'):
        run_checked(Config(dict()), 'train')


@pytest.mark.parametrize(
    'error',
    [
        KeyError('loss_cls'),  # a plain missing key: not a registry error
        KeyError('NopeRunner is not in the runner registry. Please check'),
        ValueError('something else'),
        pickle.UnpicklingError('invalid load key'),  # not weights-only
    ])
def test_other_errors_pass_through_unchanged(monkeypatch, error):
    _stub(monkeypatch, error=error)
    with pytest.raises(type(error)) as err:
        run_checked(Config(dict(load_from='x.pth')), 'train')
    assert err.value is error


def test_unknown_runner_type_passes_through(tmp_path):
    """mmengine's runner-registry message names no scope: nothing to add."""
    cfg = Config(dict(runner_type='NopeRunner', work_dir=str(tmp_path)))
    with pytest.raises(
            KeyError, match='NopeRunner is not in the runner '
            'registry'):
        run_checked(cfg, 'train')


class _Evil:

    def __reduce__(self):
        return (print, ('pwned', ))


def test_checkpoint_needing_code_is_explained(monkeypatch, tmp_path, capsys):
    """load_from of a checkpoint that weights-only loading refuses (raised
    while the runner loads it, as mmengine's load_from does)."""
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, extra=_Evil()), path)
    _stub(monkeypatch,
          _Runner(action=lambda: _load_checkpoint(path, map_location='cpu')))
    with pytest.raises(pickle.UnpicklingError) as err:
        run_checked(Config(dict(load_from=path)), 'train')
    msg = str(err.value)
    assert f"checkpoint {path!r} was refused by torch's weights-only" in msg
    assert 'builtins.print' in msg
    assert 'never loads with weights_only=False' in msg
    assert 'Weights only load failed' in str(err.value.__cause__)
    assert 'pwned' not in capsys.readouterr().out  # its code never ran
