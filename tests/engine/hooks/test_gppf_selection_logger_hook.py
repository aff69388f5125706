"""GPPFSelectionLoggerHook with a stand-in lego backbone whose selection
probabilities are set by hand and a recording visualizer (no files).

The hook on a real LegoResNet, with LocalVisBackend files, a SIMT wrapper
and the plotting tool, is tested in
``tests/tools/test_gppf_plot_selection.py``.
"""
import uuid
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.registry import HOOKS

import glid_mm  # noqa: F401
from glid_mm.engine.hooks import gppf_selection_logger_hook as module
from glid_mm.engine.hooks.gppf_selection_logger_hook import (
    SELECTION_KEY, GPPFSelectionLoggerHook)

PROBS = dict(
    det=torch.tensor([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]),
    seg=torch.tensor([[0.1, 0.9], [0.6, 0.4], [0.3, 0.7]]))


class FakeLego(nn.Module):
    """``task_names``, ``fixed_paths`` and ``selection_probs(task)``, the
    interface the hook reads."""

    def __init__(self, fixed_paths=None):
        super().__init__()
        self.task_names = ('det', 'seg')
        self.fixed_paths = fixed_paths or {}
        self.calls = []

    def selection_probs(self, task):
        self.calls.append(task)
        return PROBS[task].clone()


class Recorder:

    def __init__(self):
        self.records = []

    def add_scalars(self, scalars, step):
        self.records.append((step, dict(scalars)))


def _runner(model, max_iters=5):
    return SimpleNamespace(
        model=model,
        iter=0,
        max_iters=max_iters,
        visualizer=Recorder(),
        message_hub=MessageHub.get_instance(f'test-sel-{uuid.uuid4().hex}'))


def _drive(hook, runner, start=0):
    runner.iter = start
    hook.before_train(runner)
    for i in range(start, runner.max_iters):
        runner.iter = i
        hook.after_train_iter(runner, batch_idx=i)
    return runner.visualizer.records


def test_scalars_by_hand():
    hook = GPPFSelectionLoggerHook()
    scalars = hook.selection_scalars(FakeLego())
    assert len(scalars) == 2 * 3 * 2
    assert scalars['gppf/det/layer0/unit1'] == 0.75
    assert scalars['gppf/det/layer1/unit0'] == 1.0
    assert scalars['gppf/seg/layer2/unit0'] == pytest.approx(0.3)
    assert scalars['gppf/seg/layer1/unit1'] == pytest.approx(0.4)
    for task, probs in PROBS.items():
        for layer in range(3):
            for unit in range(2):
                key = SELECTION_KEY.format(task=task, layer=layer, unit=unit)
                assert scalars[key] == pytest.approx(float(probs[layer, unit]))
    assert all(isinstance(v, float) for v in scalars.values())


def test_steps_and_values_logged():
    """Before training at runner.iter, then after iterations 2, 4 and the
    last (5), each at runner.iter + 1; the hub holds the latest values."""
    lego = FakeLego()
    model = nn.Module()
    model.backbone = lego
    runner = _runner(model, max_iters=5)
    records = _drive(GPPFSelectionLoggerHook(interval=2), runner)
    assert [step for step, _ in records] == [0, 2, 4, 5]
    expected = GPPFSelectionLoggerHook().selection_scalars(FakeLego())
    for _, scalars in records:
        assert scalars == expected
    for key, value in expected.items():
        assert runner.message_hub.get_scalar(key).current() == value
    # probabilities are read at every logging step, not cached
    assert len(lego.calls) == 4 * 2


def test_resumed_run_starts_at_runner_iter():
    runner = _runner(FakeLego(), max_iters=7)
    records = _drive(GPPFSelectionLoggerHook(interval=3), runner, start=4)
    assert [step for step, _ in records] == [4, 6, 7]


def test_fixed_path_tasks_skipped():
    runner = _runner(FakeLego(fixed_paths=dict(seg=(0, 1, 1))), max_iters=1)
    records = _drive(GPPFSelectionLoggerHook(), runner)
    assert [step for step, _ in records] == [0, 1]
    assert {k.split('/')[1] for k in records[0][1]} == {'det'}


def test_all_tasks_fixed_logs_nothing():
    runner = _runner(
        FakeLego(fixed_paths=dict(det=(0, 0, 0), seg=(1, 1, 1))), max_iters=2)
    assert _drive(GPPFSelectionLoggerHook(interval=1), runner) == []
    assert not [
        k for k in runner.message_hub.log_scalars if k.startswith('gppf/')
    ]


def test_only_main_process_logs(monkeypatch):
    monkeypatch.setattr(module, 'is_main_process', lambda: False)
    lego = FakeLego()
    runner = _runner(lego, max_iters=3)
    assert _drive(GPPFSelectionLoggerHook(interval=1), runner) == []
    assert lego.calls == []  # not even computed
    monkeypatch.setattr(module, 'is_main_process', lambda: True)
    assert _drive(GPPFSelectionLoggerHook(interval=1), runner)


def test_find_backbone():
    lego = FakeLego()
    assert GPPFSelectionLoggerHook.find_backbone(lego) is lego
    outer = nn.Sequential(nn.Linear(1, 1), nn.Sequential(lego))
    assert GPPFSelectionLoggerHook.find_backbone(outer) is lego

    # selection_probs without task_names (or with None) does not count
    class NoTasks(nn.Module):
        task_names = None

        def selection_probs(self, task):
            return torch.ones(1, 1)

    outer = nn.ModuleList([NoTasks(), lego])
    assert GPPFSelectionLoggerHook.find_backbone(outer) is lego
    with pytest.raises(
            TypeError,
            match='found no module with '
            r'selection_probs\(\) in NoTasks'):
        GPPFSelectionLoggerHook.find_backbone(NoTasks())
    with pytest.raises(
            ValueError, match=r"several lego backbones "
            r"\['0', '1'\]"):
        GPPFSelectionLoggerHook.find_backbone(
            nn.ModuleList([FakeLego(), FakeLego()]))


def test_built_from_the_registry():
    hook = HOOKS.build(dict(type='GPPFSelectionLoggerHook', interval=4))
    assert isinstance(hook, GPPFSelectionLoggerHook)
    assert hook.interval == 4 and hook.priority == 'NORMAL'


@pytest.mark.parametrize('interval', [0, -3, 2.0, '5', False])
def test_bad_interval(interval):
    with pytest.raises(ValueError, match='interval must be a positive int'):
        GPPFSelectionLoggerHook(interval=interval)
