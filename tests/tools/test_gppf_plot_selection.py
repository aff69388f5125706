"""GPPFSelectionLoggerHook, glid_tools.gppf_plots and
tools/analysis/gppf_plot_selection.py, on a built lego model and on a real
2-process SIMT run of the tiny GPPF config."""
import glob
import importlib.util
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.visualization import Visualizer

import glid_mm  # noqa: F401
from glid_mm.engine import GPPFSelectionLoggerHook, SIMTDistributedWrapper
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
from glid_tools.gppf_plots import (HEATMAP_FILE, load_selection,
                                   plot_selection, plot_selection_curves)

TINY = ('configs/gppf/'
        'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py')
PAPER = 'configs/gppf/gppf_lego-r50-n2_56xsimt-500k_coco-ade20k-in21k.py'
TOOL = 'tools/analysis/gppf_plot_selection.py'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def small_lego(**kwargs):
    """LegoResNet-18, one stage: ``L = 3`` lego layers of ``N = 3`` units,
    controllers set to random logits."""
    lego = LegoResNet(
        task_names=('det', 'seg', 'cls'),
        depth=18,
        num_units=3,
        stem_channels=4,
        base_channels=2,
        num_stages=1,
        out_indices=(0, ),
        **kwargs)
    with torch.no_grad():
        for logits in lego.controllers.values():
            logits.copy_(torch.randn(3, 3) * 2)
    return lego


def fake_runner(model, tmp_path, name, max_iters):
    visualizer = Visualizer.get_instance(
        name,
        vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path))
    return SimpleNamespace(
        model=model,
        iter=0,
        max_iters=max_iters,
        visualizer=visualizer,
        log_dir=str(tmp_path),
        message_hub=MessageHub.get_instance(name))


def run_hook(hook, runner, max_iters):
    """Drive the hook as SIMTTrainLoop does; returns the records written."""
    hook.before_train(runner)
    for i in range(max_iters):
        runner.iter = i
        hook.after_train_iter(runner, batch_idx=i)
    scalars, = glob.glob(
        osp.join(runner.log_dir, '**', 'scalars.json'), recursive=True)
    with open(scalars) as f:
        records = [json.loads(line) for line in f]
    return scalars, records


def test_hook_logs_selection_probs(tmp_path):
    torch.manual_seed(0)
    lego = small_lego()
    model = nn.Module()
    model.backbone = lego
    # a model wrapper (built without a process group) must be unwrapped
    wrapped = SIMTDistributedWrapper.__new__(SIMTDistributedWrapper)
    nn.Module.__init__(wrapped)
    wrapped.module = model
    runner = fake_runner(wrapped, tmp_path, 'test_gppf_selection_hook', 7)
    hook = GPPFSelectionLoggerHook(interval=3)
    scalars, records = run_hook(hook, runner, 7)
    # before training, every 3rd iteration, and the last one
    assert [r['step'] for r in records] == [0, 3, 6, 7]
    hub = runner.message_hub
    for task in lego.task_names:
        probs = lego.selection_probs(task)  # [L, N] softmax, not a sample
        assert probs.shape == (3, 3)
        assert not torch.allclose(probs, torch.full_like(probs, 1 / 3))
        for layer in range(3):
            for unit in range(3):
                key = f'gppf/{task}/layer{layer}/unit{unit}'
                value = float(probs[layer, unit])
                assert all(r[key] == pytest.approx(value, abs=1e-7)
                           for r in records)
                assert hub.get_scalar(key).current() == pytest.approx(
                    value, abs=1e-7)
                # kept out of LoggerHook's text line and of checkpoints
                assert not key.startswith('train/')
                assert key not in hub.state_dict()['log_scalars']
    # read back by the plotting module: [S, L, N] per task
    history = load_selection(scalars)
    assert history.tasks == ['det', 'seg', 'cls']
    assert history.steps.tolist() == [0, 3, 6, 7]
    for task in history.tasks:
        assert history.probs[task].shape == (4, 3, 3)
        np.testing.assert_allclose(
            history.final(task)[1],
            lego.selection_probs(task).numpy(),
            atol=1e-7)


def test_hook_skips_fixed_path_tasks(tmp_path):
    lego = small_lego(fixed_paths=dict(seg=[0, 2, 1]))
    runner = fake_runner(lego, tmp_path, 'test_gppf_selection_fixed', 1)
    _, records = run_hook(GPPFSelectionLoggerHook(), runner, 1)
    assert [r['step'] for r in records] == [0, 1]
    tasks = {key.split('/')[1] for key in records[0] if key != 'step'}
    assert tasks == {'det', 'cls'}


def test_hook_errors():
    for interval in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='interval'):
            GPPFSelectionLoggerHook(interval=interval)
    runner = SimpleNamespace(model=nn.Linear(2, 2))
    with pytest.raises(TypeError, match='no module with selection_probs'):
        GPPFSelectionLoggerHook().before_train(runner)
    two = nn.ModuleDict(dict(a=small_lego(), b=small_lego()))
    with pytest.raises(ValueError, match=r"several lego backbones \['a', "):
        GPPFSelectionLoggerHook().before_train(SimpleNamespace(model=two))


def test_gppf_configs_log_the_selection(project_root):
    for path, interval in ((TINY, 1), (PAPER, 1000)):
        hooks = Config.fromfile(osp.join(project_root, path)).custom_hooks
        types = [h['type'] for h in hooks]
        # GumbelTemperatureHook stays first (tests override custom_hooks.0);
        # the runtime's hooks (configs/_base_/runtimes/) come last
        assert types == [
            'GumbelTemperatureHook', 'GPPFSelectionLoggerHook',
            'FiniteLossHook', 'AtomicCheckpointHook'
        ]
        assert hooks[1]['interval'] == interval


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'gppf_plot_selection',
        osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), TOOL))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_error_without_gppf_scalars(tmp_path):
    run = tmp_path / 'work' / '20240101_000000' / 'vis_data'
    run.mkdir(parents=True)
    scalars = run / 'scalars.json'
    scalars.write_text(
        json.dumps(dict(loss=1.0, lr=0.1, iter=1, step=1)) + '\n' +
        json.dumps(dict(gumbel_tau=5.0, step=2)) + '\n')
    for path in (str(scalars), str(tmp_path / 'work')):
        with pytest.raises(
                ValueError, match=f'no GPPF selection scalars.*{scalars}'):
            load_selection(path)
    with pytest.raises(ValueError, match=str(scalars)):
        load_tool().main([str(scalars), '--out-dir', str(tmp_path)])
    assert not (tmp_path / HEATMAP_FILE).exists()
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no scalars.json under'):
        load_selection(str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='no such work dir'):
        load_selection(str(tmp_path / 'missing'))


def test_bad_units(tmp_path):
    scalars = tmp_path / 'scalars.json'
    scalars.write_text(
        json.dumps({
            'gppf/det/layer0/unit0': 0.3,
            'gppf/det/layer0/unit1': 0.7,
            'step': 0
        }) + '\n')
    history = load_selection(str(scalars))
    with pytest.raises(ValueError, match='units'):
        plot_selection_curves(history, str(tmp_path / 'c.png'), units=[2])
    written = plot_selection(str(scalars))  # next to the scalars file
    assert osp.dirname(written['heatmap']) == str(tmp_path)
