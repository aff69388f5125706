"""MultiTaskValLoop / MultiTaskTestLoop: config errors, the tiny GPPF config
validated and tested on one process, and a 2-process gloo SIMT run through
tools/dist_train.sh whose validation must equal the one-process result."""
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import LOOPS, RUNNERS

import glid_mm  # noqa: F401
from glid_mm.engine.loops import (MultiTaskTestLoop, MultiTaskValLoop,
                                  multi_task_val_loop)
from glid_mm.utils.gppf_task_configs import resolve_task_configs
from glid_test_helpers.dist import dist_train
from glid_tools.stack_demo import read_scalars

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

TINY = ('configs/gppf/'
        'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py')
PAPER = 'configs/gppf/gppf_lego-r50-n2_56xsimt-500k_coco-ade20k-in21k.py'
LOADER = dict(batch_size=1, dataset=dict(type='X'))
METRIC = dict(type='Accuracy')
# smaller than the config's val sets, same code path
OPTIONS = [
    'val_dataloader.det.dataset.indices=4',
    'val_dataloader.seg.dataset.indices=2'
]
# task -> (metric key, upper bound): COCO AP in [0, 1], mmseg / mmpretrain
# report percentages
KEYS = {
    'det/coco/bbox_mAP': 1,
    'det/coco/segm_mAP': 1,
    'seg/mIoU': 100,
    'seg/aAcc': 100,
    'cls/accuracy/top1': 100
}


def fake_runner(tasks=('det', 'seg'), model=None):
    if model is None:
        model = nn.Module()
        model.tasks = nn.ModuleDict({t: nn.Identity() for t in tasks})
    return SimpleNamespace(
        model=model, world_size=1, rank=0, seed=0, _randomness_cfg=dict())


@pytest.mark.parametrize('loop', [MultiTaskValLoop, MultiTaskTestLoop])
@pytest.mark.parametrize('kwargs, error, match', [
    (dict(dataloader=LOADER), ValueError, 'one per task'),
    (dict(dataloader=[LOADER]), ValueError, 'one per task'),
    (dict(evaluator=METRIC), ValueError, 'one per task of'),
    (dict(evaluator=[METRIC]), ValueError, 'one per task of'),
    (dict(evaluator=dict(det=METRIC)), KeyError,
     "task 'seg' but .*_evaluator has no entry"),
    (dict(
        dataloader=dict(det=LOADER, depth=LOADER),
        evaluator=dict(det=METRIC, depth=METRIC)), KeyError,
     "task 'depth', unknown to the model"),
    (dict(dataloader=dict(det=LOADER)), KeyError,
     "_evaluator names task 'seg' but .*_dataloader has no entry"),
])
def test_bad_configs(loop, kwargs, error, match):
    args = dict(
        dataloader=dict(det=LOADER, seg=LOADER),
        evaluator=dict(det=METRIC, seg=METRIC))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        loop(fake_runner(), **args)


def test_error_names_the_config_key():
    with pytest.raises(KeyError, match="test_dataloader names task 'depth'"):
        MultiTaskTestLoop(
            fake_runner(),
            dataloader=dict(depth=LOADER),
            evaluator=dict(depth=METRIC))
    with pytest.raises(ValueError, match='val_evaluator = dict'):
        MultiTaskValLoop(
            fake_runner(),
            dataloader=dict(det=LOADER),
            evaluator=dict(metrics=[METRIC]))


def test_needs_multi_task_model():
    with pytest.raises(TypeError, match='needs a multi-task model'):
        MultiTaskValLoop(
            fake_runner(model=nn.Linear(1, 1)),
            dataloader=dict(det=LOADER),
            evaluator=dict(det=METRIC))


def test_rank0_buffers_broadcast_then_restore(monkeypatch):
    """Stands in for the collective: 'rank 0' holds 7 in every buffer."""
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2))
    model[0].running_mean.fill_(2.)
    model[0].num_batches_tracked.fill_(5)
    calls = []

    def broadcast(tensor, src):
        assert src == 0
        calls.append(tensor.dtype)
        tensor.fill_(7)

    monkeypatch.setattr(multi_task_val_loop, 'is_distributed', lambda: True)
    monkeypatch.setattr(multi_task_val_loop.dist, 'broadcast', broadcast)
    weight = model[1].weight.detach().clone()
    with multi_task_val_loop.rank0_buffers(model):
        assert calls == [torch.float32, torch.int64]  # one per dtype
        assert (model[0].running_mean == 7).all()
        assert (model[0].running_var == 7).all()
        assert int(model[0].num_batches_tracked) == 7
    assert (model[0].running_mean == 2).all()
    assert (model[0].running_var == 1).all()
    assert int(model[0].num_batches_tracked) == 5
    assert torch.equal(model[1].weight, weight)  # parameters untouched


@pytest.mark.parametrize('path', [TINY, PAPER], ids=osp.basename)
def test_gppf_configs_declare_per_task_evaluation(path, project_root):
    # the task configs named by path, as TaskConfigRunner resolves them
    cfg = resolve_task_configs(Config.fromfile(osp.join(project_root, path)))
    assert cfg.val_cfg.type == 'MultiTaskValLoop'
    assert cfg.test_cfg.type == 'MultiTaskTestLoop'
    for split in ('val', 'test'):
        assert set(cfg[f'{split}_dataloader']) == set(
            cfg[f'{split}_evaluator']) == set(cfg.model.tasks)
    assert [cfg.val_evaluator[t].type for t in ('det', 'seg', 'cls')
            ] == ['CocoMetric', 'IoUMetric', 'Accuracy']
    assert list(cfg.val_evaluator.det.metric) == ['bbox', 'segm']
    # the other hooks stay as they were
    assert [h.type for h in cfg.custom_hooks] == [
        'GumbelTemperatureHook', 'GPPFSelectionLoggerHook', 'FiniteLossHook',
        'AtomicCheckpointHook'
    ]
    if path == PAPER:
        assert cfg.val_dataloader.det.dataset.ann_file.endswith(
            'instances_val2017.json')
        assert 'validation' in cfg.val_dataloader.seg.dataset.data_prefix[
            'img_path']
        assert cfg.val_dataloader.cls.dataset.data_prefix == \
            'imagenet21k_val'
        assert tuple(cfg.val_evaluator.cls.topk) == (1, 5)


def check_metrics(metrics):
    for key, top in KEYS.items():
        assert key in metrics, sorted(metrics)
        assert 0 <= metrics[key] <= top, (key, metrics[key])
    tasks = {key.split('/')[0] for key in metrics if '/' in key}
    assert tasks == {'det', 'seg', 'cls'}


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory, project_root):
    """2 SIMT iterations of the tiny config on 2 CPU processes, validated
    (best checkpoint by det/coco/bbox_mAP) after the last one."""
    work_dir = str(tmp_path_factory.mktemp('gppf_val'))
    dist_train(
        TINY,
        work_dir,
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.save_best=det/coco/bbox_mAP',
        'custom_hooks.0.decay_iters=1',
        *OPTIONS,
        timeout=400)
    return work_dir, read_scalars(work_dir)


@pytest.fixture(scope='module')
def runner(tmp_path_factory, data_root, project_root):
    """A one-process runner of the tiny config (random init)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('GLID_MM_DATA', osp.abspath(data_root))
        cfg = Config.fromfile(osp.join(project_root, TINY))
    for option in OPTIONS:
        key, value = option.split('=')
        cfg.merge_from_dict({key: int(value)})
        cfg.merge_from_dict({key.replace('val_', 'test_'): int(value)})
    cfg.work_dir = str(tmp_path_factory.mktemp('gppf_val_one'))
    # runner_type: TaskConfigRunner reads the task configs
    yield RUNNERS.build(cfg)
    torch.set_num_threads(threads)


def test_one_process_val_has_every_task_metric(runner):
    model = runner.model
    assert not hasattr(model, 'module')  # one process: the bare model
    seen = []

    def record(module, args, kwargs):
        # the first lego layer runs one unit: the task's argmax
        seen.append((model.backbone.current_task, module.training,
                     kwargs.get('index'), kwargs.get('weights')))

    layer = next(iter(model.backbone.lego.values()))
    handle = layer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        metrics = runner.val()
    finally:
        handle.remove()
    check_metrics(metrics)
    # 4 COCO images, 2 CamVid frames, 8 hymenoptera images in one batch
    assert [s[0] for s in seen] == ['det'] * 4 + ['seg'] * 2 + ['cls']
    for task, training, index, weights in seen:
        assert not training and weights is None
        assert index == model.backbone.path(task)[0]
    loop = runner.val_loop
    assert isinstance(loop, MultiTaskValLoop)
    assert len(runner.val_dataloader) == 4 + 2 + 1
    assert set(runner.val_evaluator) == {'det', 'seg', 'cls'}
    assert 'ants' in runner.val_evaluator['cls'].dataset_meta['classes']
    assert runner.message_hub.get_scalar('val/seg/mIoU').current() == \
        metrics['seg/mIoU']


def test_bad_task_through_the_loop_registry(runner):
    with pytest.raises(KeyError, match="'depth', unknown to the model"):
        LOOPS.build(
            dict(
                type='MultiTaskValLoop',
                dataloader=dict(depth=LOADER),
                evaluator=dict(depth=METRIC)),
            default_args=dict(runner=runner))


def test_two_process_val_equals_one_process_test(dist_run, runner):
    work_dir, records = dist_run
    val = [r for r in records if 'seg/mIoU' in r]
    assert len(val) == 1 and val[0]['step'] == 2
    check_metrics(val[0])
    assert any(
        f.startswith('best_det_coco_bbox_mAP_iter_2')
        for f in os.listdir(work_dir))
    # the two processes each scored half of every task's data with rank 0's
    # buffers (rank 1 never ran seg, so its seg head BN statistics differ);
    # collected, the metrics are those of one process on the checkpoint
    runner.load_checkpoint(osp.join(work_dir, 'iter_2.pth'))
    metrics = runner.test()
    check_metrics(metrics)
    assert isinstance(runner.test_loop, MultiTaskTestLoop)
    for key in KEYS:
        assert metrics[key] == pytest.approx(val[0][key], abs=1e-4), key


def test_test_tool_dumps_one_file_per_task(dist_run, project_root, tmp_path):
    """tools/test.py --out with per-task evaluators writes one pickle per
    task next to the metrics (GPPF configs)."""
    import pickle
    import subprocess
    import sys
    work_dir, _ = dist_run
    out = tmp_path / 'preds.pkl'
    proc = subprocess.run([
        sys.executable, 'tools/test.py', TINY,
        osp.join(work_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(out)
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # one prediction per test sample of the task (the config's indices):
    # 8 COCO128 images, 4 CamVid frames, 8 hymenoptera images
    for task, size in (('det', 8), ('seg', 4), ('cls', 8)):
        path = tmp_path / f'preds_{task}.pkl'
        with open(path, 'rb') as f:
            preds = pickle.load(f)
        assert len(preds) == size, (task, len(preds))
        paths = [p['img_path'] for p in preds]
        assert len(set(paths)) == size, (task, paths)
