"""The tiny derived-task config runs end to end in mmengine's Runner:
tokenizer hook, task sampler / batch sampler, loss, decoding, metric,
checkpoint with the tokenizer, and a test run restored from it."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

TINY = osp.join('configs', 'lit_decoder',
                'lit-decoder_resnet18_1xb16-10e_derived-tasks-64px.py')


def _shrink(loader, n, batch):
    loader.batch_size = batch
    loader.num_workers = 0
    loader.persistent_workers = False
    for task in loader.dataset.tasks.values():
        task.dataset.indices = n
        if task.dataset.type == 'LiTCamVidTextDataset':
            task.dataset.split = 'val'  # fewer label maps to scan


@pytest.mark.slow
def test_tiny_config_train_val_test(project_root, tmp_path, monkeypatch):
    monkeypatch.chdir(project_root)
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(tmp_path)
    cfg.model.max_length = 24  # random decoder: keep decoding short
    _shrink(cfg.train_dataloader, 6, 4)
    cfg.train_dataloader.batch_sampler = dict(type='LiTTaskBatchSampler')
    cfg.val_dataloader = copy.deepcopy(cfg.val_dataloader)
    _shrink(cfg.val_dataloader, 2, 8)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=3, val_interval=3)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=3, by_epoch=False)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    assert model.tokenizer.is_trained
    metrics = runner.val_loop.run()
    assert set(metrics) >= {
        'lit/hymenoptera/accuracy', 'lit/coco_persons/accuracy',
        'lit/coco_categories/accuracy', 'lit/camvid_classes/accuracy'
    }
    ckpt = osp.join(str(tmp_path), 'iter_3.pth')
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    assert state['_extra_state'].dtype == torch.uint8

    test_cfg = copy.deepcopy(cfg)
    test_cfg.work_dir = str(tmp_path / 'test')
    test_cfg.load_from = ckpt
    tester = Runner.from_cfg(test_cfg)
    test_metrics = tester.test()
    assert tester.model.tokenizer.state_dict() == \
        model.tokenizer.state_dict()
    assert test_metrics == metrics
