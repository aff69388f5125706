"""Every GPPF config builds (init_cfg=None: no weights are loaded)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import glid_mm  # noqa: F401
from glid_mm.models.gppf import GPPFMultiTaskModel, LegoResNet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
MULTI = sorted(glob.glob(osp.join(ROOT, 'configs/gppf/*.py')))
TASKS = sorted(glob.glob(osp.join(ROOT, 'configs/gppf/tasks/*.py')))


def build(cfg):
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model_cfg = cfg.model
        if cfg.get('data_preprocessor') and 'data_preprocessor' not in \
                model_cfg:
            model_cfg.data_preprocessor = cfg.data_preprocessor
        return MODELS.build(model_cfg)


def test_configs_found():
    assert len(MULTI) == 2 and len(TASKS) == 6


@pytest.mark.parametrize('path', MULTI, ids=osp.basename)
def test_multi_task_config_builds(path):
    cfg = Config.fromfile(path)
    assert set(cfg.train_dataloader) == set(cfg.model.tasks) == set(
        cfg.train_cfg.task_weights) == {'det', 'seg', 'cls'}
    assert cfg.train_cfg.type == 'SIMTTrainLoop'
    assert cfg.model_wrapper_cfg.type == 'SIMTDistributedWrapper'
    assert dict(cfg.train_cfg.task_weights) == dict(
        det=2.5, seg=1.0, cls=4.0)  # App. D.1
    hook = cfg.custom_hooks[0]
    assert hook.type == 'GumbelTemperatureHook' and hook.start == 5.0
    model = build(cfg)
    assert isinstance(model, GPPFMultiTaskModel)
    assert model.task_scopes == dict(
        det='mmdet', seg='mmseg', cls='mmpretrain')
    if 'in21k' in path:  # paper scale (App. D.1)
        assert [cfg.train_dataloader[t].batch_size
                for t in ('det', 'seg', 'cls')] == [8, 8, 96]
        assert cfg.train_cfg.max_iters == 500000
        assert hook.decay_iters == 450000
        assert cfg.optim_wrapper.optimizer.lr == 0.16
        assert type(model.tasks.det.roi_head.bbox_head).__name__ == \
            'Shared4Conv1FCBBoxHead'


@pytest.mark.parametrize('path', TASKS, ids=osp.basename)
def test_task_config_builds_alone(path):
    cfg = Config.fromfile(path)
    model = build(cfg)
    assert isinstance(model.backbone, LegoResNet)
    assert len(model.backbone.task_names) == 1
