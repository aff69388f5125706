"""Every GPPF config builds (init_cfg=None: no weights are loaded)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import glid_mm  # noqa: F401
from glid_mm.models.algorithms.gppf_multi_task_model import GPPFMultiTaskModel
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
from glid_mm.utils.gppf_task_configs import (FROM_CONFIG, is_task_config_ref,
                                             resolve_task_configs)

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MULTI = sorted(glob.glob(osp.join(ROOT, 'configs/gppf/*.py')))
TASKS = sorted(glob.glob(osp.join(ROOT, 'configs/gppf/tasks/*.py')))
SINGLE = sorted(glob.glob(osp.join(ROOT, 'configs/gppf/single/*.py')))


def build(cfg):
    """The model as the runner builds it (task configs resolved first, as
    TaskConfigRunner does)."""
    cfg = resolve_task_configs(cfg)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model_cfg = cfg.model
        if cfg.get('data_preprocessor') and 'data_preprocessor' not in \
                model_cfg:
            model_cfg.data_preprocessor = cfg.data_preprocessor
        return MODELS.build(model_cfg)


def test_configs_found():
    assert len(MULTI) == 6 and len(TASKS) == 6 and len(SINGLE) == 3


# GPPF Table 1 rows: (SIMT, SyncBN, units N) of each multi-task config
TABLE1 = {
    'gppf-batchtask-nosyncbn_lego-r50-n1': ('per_iteration', 'BN', 1),
    'gppf-nosyncbn_lego-r50-n1': ('per_process', 'BN', 1),
    'gppf_lego-r50-n1': ('per_process', 'CrossTaskSyncBN', 1),
    'gppf_lego-r50-n2': ('per_process', 'CrossTaskSyncBN', 2),
    'gppf_lego-r50-n3': ('per_process', 'CrossTaskSyncBN', 3),
}


@pytest.mark.parametrize('name', sorted(TABLE1))
def test_table1_rows(name):
    path = osp.join(ROOT, 'configs/gppf',
                    f'{name}_56xsimt-500k_coco-ade20k-in21k.py')
    cfg = Config.fromfile(path)
    sampling = cfg.train_cfg.get('task_sampling', 'per_process')
    row = (sampling, cfg.model.backbone.norm_cfg.type,
           cfg.model.backbone.num_units)
    assert row == TABLE1[name]
    assert build(cfg).backbone.num_units == TABLE1[name][2]


@pytest.mark.parametrize('path', SINGLE, ids=osp.basename)
def test_single_baselines_are_plain_resnet50(path):
    """Table 1 "Single": the task recipe with a plain ResNet-50."""
    cfg = Config.fromfile(path)
    model = build(cfg)
    assert type(model.backbone).__name__ == 'ResNet'
    assert model.backbone.depth == 50
    assert not any(isinstance(m, LegoResNet) for m in model.modules())


@pytest.mark.parametrize('path', MULTI, ids=osp.basename)
def test_multi_task_config_builds(path):
    cfg = Config.fromfile(path)
    assert set(cfg.train_dataloader) == set(cfg.model.tasks) == set(
        cfg.train_cfg.task_weights) == {'det', 'seg', 'cls'}
    assert cfg.train_cfg.type == 'SIMTTrainLoop'
    assert cfg.model_wrapper_cfg.type == 'SIMTDistributedWrapper'
    assert dict(cfg.train_cfg.task_weights) == dict(
        det=2.5, seg=1.0, cls=4.0)  # App. D.1
    hook = next(h for h in cfg.custom_hooks
                if h.type == 'GumbelTemperatureHook')
    assert hook.start == 5.0
    model = build(cfg)
    assert isinstance(model, GPPFMultiTaskModel)
    assert model.task_scopes == dict(
        det='mmdet', seg='mmseg', cls='mmpretrain')
    # the task configs named by path, as TaskConfigRunner resolves them
    cfg = resolve_task_configs(cfg)
    if 'in21k' in path:  # paper scale (App. D.1)
        assert [
            cfg.train_dataloader[t].batch_size for t in ('det', 'seg', 'cls')
        ] == [8, 8, 96]
        assert cfg.train_cfg.max_iters == 500000
        assert hook.decay_iters == 450000
        assert cfg.optim_wrapper.optimizer.lr == 0.16
        assert type(model.tasks.det.roi_head.bbox_head).__name__ == \
            'Shared4Conv1FCBBoxHead'
        # ImageNet-21K-P fall11 (Ridnik et al.): 11,221 classes
        assert model.tasks.cls.head.num_classes == 11221
        assert cfg.train_dataloader.cls.dataset.data_prefix == \
            'imagenet21k_train'


@pytest.mark.parametrize('path', TASKS, ids=osp.basename)
def test_task_config_builds_alone(path):
    cfg = Config.fromfile(path)
    model = build(cfg)
    assert isinstance(model.backbone, LegoResNet)
    assert len(model.backbone.task_names) == 1


@pytest.mark.parametrize('path', MULTI, ids=osp.basename)
def test_multi_task_configs_name_their_task_configs(path):
    """Each task's model, train / val dataloader and evaluator come from
    one task config of ./tasks, named by path (TaskConfigRunner reads it,
    the components get the resolved parts)."""
    cfg = Config.fromfile(path)
    assert cfg.runner_type == 'TaskConfigRunner'
    # unresolved, the model refuses the reference and names the fix
    with pytest.raises(TypeError, match="model.tasks.det .*TaskConfigRunner"):
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            MODELS.build(cfg.model)
    used = {}
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator'):
        for task, entry in cfg[key].items():
            if is_task_config_ref(entry):
                used.setdefault(task, set()).add(entry[FROM_CONFIG])
    for task, entry in cfg.model.tasks.items():
        assert is_task_config_ref(entry), task
        used.setdefault(task, set()).add(entry[FROM_CONFIG])
    for task, paths in used.items():
        assert len(paths) == 1, (task, paths)  # one task config per task
        (task_path, ) = paths
        assert osp.isfile(task_path) and task_path in TASKS, task_path
        assert task_path == cfg.task_configs[task]
    resolved = resolve_task_configs(cfg)
    for task, model in resolved.model.tasks.items():
        assert 'backbone' not in model and FROM_CONFIG not in model
        assert model._scope_ == Config.fromfile(
            cfg.task_configs[task]).default_scope
    assert not any(
        is_task_config_ref(entry)
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                    'val_evaluator', 'test_evaluator')
        for entry in resolved[key].values())


def test_task_config_changes_are_merged():
    """The keys next to ``from_config`` are merged into the task's part."""
    path = osp.join(
        ROOT, 'configs/gppf/'
        'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py')
    cfg = resolve_task_configs(Config.fromfile(path))
    det = Config.fromfile(
        osp.join(
            ROOT, 'configs/gppf/tasks/'
            'mask-rcnn_lego-r50-w16-n2_1xb2-20i_coco128-256px.py'))
    assert cfg.model.tasks.det.test_cfg.rcnn.score_thr == 0.0
    assert det.model.test_cfg.rcnn.score_thr == 0.05  # mmdet's default
    assert cfg.val_dataloader.det.dataset.indices == 8
    assert 'indices' not in det.val_dataloader.dataset
    # everything else as in the task config
    assert cfg.val_dataloader.det.dataset.ann_file == \
        det.val_dataloader.dataset.ann_file
    assert cfg.train_dataloader.det == det.train_dataloader
    assert cfg.val_evaluator.det == det.val_evaluator
