"""TaskConfigRunner: GPPF task configs named by path are read once, when
the runner is built; the model and the loops get plain dicts."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS

import glid_mm  # noqa: F401
from glid_mm.engine.runner import TaskConfigRunner
from glid_mm.utils import gppf_task_configs
from glid_mm.utils.gppf_task_configs import FROM_CONFIG, resolve_task_configs

pytestmark = pytest.mark.slow  # builds the tiny GPPF runner and its loops

TINY = ('configs/gppf/'
        'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py')


def test_runner_resolves_task_configs_once(project_root, data_root, tmp_path,
                                           monkeypatch):
    cfg = Config.fromfile(osp.join(project_root, TINY))
    cfg.work_dir = str(tmp_path)
    expected = resolve_task_configs(cfg).pretty_text
    assert FROM_CONFIG in cfg.pretty_text
    reads = []

    class Counted(Config):
        """Config whose fromfile records the files read."""

        @staticmethod
        def fromfile(path, *args, **kwargs):
            reads.append(osp.abspath(path))
            return Config.fromfile(path, *args, **kwargs)

    monkeypatch.setattr(gppf_task_configs, 'Config', Counted)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # the toolboxes' train.py: RUNNERS.build when runner_type is set
        from mmdet.registry import RUNNERS as MMDET_RUNNERS
        runner = MMDET_RUNNERS.build(cfg)
        assert isinstance(runner, TaskConfigRunner)
        built_reads = len(reads)
        # each of the three task configs is read once, though the config
        # names each from the model, the dataloaders and the evaluators
        assert built_reads == len(set(reads)) == 3, reads
        # the resolved config is what resolve_task_configs gives, unchanged
        assert runner.cfg.pretty_text == expected
        assert FROM_CONFIG not in runner.cfg.pretty_text
        assert FROM_CONFIG in cfg.pretty_text  # the caller's is left as is
        # building the model, the SIMT loop and the val / test loops reads
        # no file
        runner.train_loop, runner.val_loop, runner.test_loop
        assert len(reads) == built_reads
        assert set(runner.model.task_scopes) == {'det', 'seg', 'cls'}
    finally:
        torch.set_num_threads(threads)


def test_registered_in_mmengine_root():
    assert RUNNERS.get('TaskConfigRunner') is TaskConfigRunner
