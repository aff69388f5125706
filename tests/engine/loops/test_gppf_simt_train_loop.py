"""SIMTTrainLoop: config errors, and the tiny GPPF config through
tools/dist_train.sh with 2 CPU processes (gloo)."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import glid_mm  # noqa: F401
from glid_mm.engine import GumbelTemperatureHook, SIMTTrainLoop
from glid_test_helpers.dist import dist_train
from glid_test_helpers.simt_runner import fake_runner
from glid_tools.stack_demo import read_scalars

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

TINY = ('configs/gppf/'
        'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py')
LOADER = dict(batch_size=1, dataset=dict(type='X'))


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(dataloader=LOADER), ValueError, 'one per task'),
    (dict(dataloader=dict(det=LOADER, seg=LOADER),
          task_weights=dict(det=1.0)), KeyError, 'must match'),
    (dict(
        dataloader=dict(det=LOADER, depth=LOADER),
        task_weights=dict(det=1.0, depth=1.0)), KeyError,
     "unknown task\\(s\\) \\['depth'\\]"),
    (dict(task_weights=dict(det=1.0, seg=0.0)), ValueError,
     "'seg' must be a finite number > 0"),
    (dict(task_weights=dict(det=1.0, seg=-2)), ValueError, "'seg'"),
    (dict(max_iters=0), ValueError, 'max_iters'),
    (dict(task_weights=[1.0, 1.0]), TypeError, 'task_weights must be a dict'),
    (dict(task_sampling='per_gpu'), ValueError, 'task_sampling'),
])
def test_bad_configs(kwargs, error, match):
    args = dict(
        dataloader=dict(det=LOADER, seg=LOADER),
        max_iters=10,
        task_weights=dict(det=2.5, seg=1.0))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        SIMTTrainLoop(fake_runner(), **args)


def test_needs_multi_task_model_and_simt_wrapper():
    args = dict(
        dataloader=dict(det=LOADER), max_iters=10, task_weights=dict(det=1.0))
    with pytest.raises(TypeError, match='needs a multi-task model'):
        SIMTTrainLoop(fake_runner(model=nn.Linear(1, 1)), **args)
    with pytest.raises(TypeError, match='SIMTDistributedWrapper'):
        SIMTTrainLoop(fake_runner(('det', ), world_size=2), **args)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory, project_root):
    """3 SIMT iterations of the tiny config on 2 CPU processes."""
    work_dir = str(tmp_path_factory.mktemp('gppf_tiny'))
    dist_train(
        TINY,
        work_dir,
        'train_cfg.max_iters=3',
        'default_hooks.checkpoint.interval=3',
        'custom_hooks.0.decay_iters=2',
        timeout=420)
    return work_dir, read_scalars(work_dir)


def test_tiny_config_trains_on_two_processes(tiny_run):
    _, records = tiny_run
    train = [r for r in records if 'gumbel_tau' in r]
    assert [r['iter'] for r in train] == [1, 2, 3]
    # two processes each ran one task per iteration
    for r in train:
        assert r['simt.det'] + r['simt.seg'] + r['simt.cls'] == 2
    # temperature follows App. D.1's schedule (decay_iters=2 here)
    hook = GumbelTemperatureHook(start=5.0, end=0.01, decay_iters=2)
    assert [r['gumbel_tau'] for r in train
            ] == pytest.approx([hook.temperature(i) for i in range(3)])
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in train)


def test_extracted_backbone_loads_into_mmdet_resnet50(tiny_run, tmp_path,
                                                      project_root):
    from mmdet.models.backbones import ResNet
    work_dir, _ = tiny_run
    out = tmp_path / 'det_r50.pth'
    done = subprocess.run([
        sys.executable, 'tools/gppf_extract_backbone.py',
        osp.join(work_dir, 'iter_3.pth'),
        str(out), '--task', 'det'
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    static = torch.load(out, weights_only=True)
    assert len(static['meta']['gppf_path']) == 17
    resnet = ResNet(depth=50, stem_channels=16, base_channels=16)
    missing, unexpected = resnet.load_state_dict(
        static['state_dict'], strict=False)
    assert missing == [] and unexpected == []


def test_selection_plots_from_the_run(tiny_run, tmp_path, project_root):
    """tools/analysis/gppf_plot_selection.py on the run: the selection the
    config's hook logged (interval 1, rank 0 only) is uniform at step 0
    and, at the last step, the softmax of the trained controllers."""
    import numpy as np

    from glid_tools.gppf_plots import CURVES_FILE, HEATMAP_FILE, load_selection
    work_dir, _ = tiny_run
    history = load_selection(work_dir)
    assert history.source.endswith(osp.join('vis_data', 'scalars.json'))
    # one record per step: before training and 3 iterations
    assert history.steps.tolist() == [0, 1, 2, 3]
    assert history.tasks == ['det', 'seg', 'cls']
    ckpt = torch.load(
        osp.join(work_dir, 'iter_3.pth'),
        map_location='cpu',
        weights_only=True)
    for task in history.tasks:
        probs = history.probs[task]  # [S, L, N]
        assert probs.shape == (4, 17, 2)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(probs[0], 0.5)  # uniform start
        logits = ckpt['state_dict'][f'backbone.controllers.{task}']
        np.testing.assert_allclose(
            probs[-1], logits.softmax(-1).numpy(), atol=1e-7)
    out_dir = tmp_path / 'plots'
    done = subprocess.run([
        sys.executable, 'tools/analysis/gppf_plot_selection.py', work_dir,
        '--out-dir',
        str(out_dir)
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert history.source in done.stdout
    for name in (HEATMAP_FILE, CURVES_FILE):
        png = out_dir / name
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        assert png.stat().st_size > 10000
