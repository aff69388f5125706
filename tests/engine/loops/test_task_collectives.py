"""SIMT refuses a task model whose loss runs a collective (each process runs
its own task, so a head's all-reduce would pair with another task's)."""
import pytest
import torch.nn as nn
from mmengine.registry import DefaultScope

import glid_mm  # noqa: F401
from glid_mm.engine import SIMTTrainLoop
from glid_mm.engine.loops import find_collectives
from glid_mm.registry import build_model
from glid_test_helpers.simt_runner import fake_runner

LOADER = dict(batch_size=1, dataset=dict(type='X'))


def _head(cfg: dict, scope: str = 'mmdet') -> nn.Module:
    with DefaultScope.overwrite_default_scope(scope):
        return build_model(cfg)


def _detr(type='DETRHead') -> nn.Module:
    """A small DETR head (its loss_cls given: mmdet's DETRHead writes a
    tensor into its default loss_cls dict, so a second default build in
    one process fails)."""
    return _head(
        dict(
            type=type,
            num_classes=3,
            embed_dims=16,
            loss_cls=dict(
                type='CrossEntropyLoss',
                bg_cls_weight=0.1,
                use_sigmoid=False,
                loss_weight=1.0,
                class_weight=1.0)))


def _task(head: nn.Module) -> nn.Module:
    """A task model holding ``head`` (as a detector holds its bbox head)."""
    model = nn.Module()
    model.bbox_head = head
    return model


def test_finds_the_all_reducing_mmdet_heads():
    detr = find_collectives(_task(_detr()))
    assert detr == [
        'DETRHead.loss_by_feat_single (defined in DETRHead) calls '
        'reduce_mean'
    ]
    fcos = find_collectives(
        _head(dict(type='FCOSHead', num_classes=3, in_channels=8)))
    assert len(fcos) == 1 and fcos[0].startswith('FCOSHead.loss_by_feat')


def test_finds_a_batch_augment_collective():
    """YOLOX's batch augment synchronises its random size across processes
    (``barrier`` while training): under SIMT the other processes run other
    tasks. It sits in the task's data preprocessor."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        pre = build_model(
            dict(
                type='DetDataPreprocessor',
                batch_augments=[
                    dict(
                        type='BatchSyncRandomResize',
                        random_size_range=(480, 800),
                        size_divisor=32,
                        interval=10)
                ]))
    assert find_collectives(pre) == [
        'BatchSyncRandomResize._get_random_size (defined in '
        'BatchSyncRandomResize) calls barrier'
    ]


def test_local_normaliser_heads_and_plain_heads_pass():
    """GLIDDETRHead runs its loss without collectives under SIMT (its
    local_normalisers context); the GPPF tasks' stock heads have none."""
    assert find_collectives(_detr('GLIDDETRHead')) == []
    plain = [
        _head(dict(type='RPNHead', in_channels=8, num_classes=1)),
        _head(
            dict(type='FCNHead', in_channels=8, channels=8, num_classes=3),
            'mmseg'),
        _head(
            dict(type='LinearClsHead', in_channels=8, num_classes=3),
            'mmpretrain'),
    ]
    assert [find_collectives(h) for h in plain] == [[], [], []]


@pytest.mark.slow
def test_real_simt_task_models_pass(project_root):
    """The tiny GPPF config's and the nano generalist's task models."""
    from mmengine.config import Config

    from glid_mm.utils.gppf_task_configs import resolve_task_configs
    from glid_test_helpers.generalist import build, resolved_config
    cfg = resolve_task_configs(
        Config.fromfile(
            f'{project_root}/configs/gppf/'
            'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py'))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        gppf = build_model(cfg.model)
    generalist = build(resolved_config()['model'])
    for model in (gppf, generalist):
        assert {
            t: find_collectives(m)
            for t, m in model.tasks.items()
        } == {
            t: []
            for t in model.tasks
        }


def _runner(task_model: nn.Module, world_size: int):
    return fake_runner(
        world_size=world_size,
        task_models=dict(det=task_model, seg=nn.Identity()))


def test_simt_loop_refuses_a_collective_in_a_task_loss():
    detr = _task(_detr())
    args = dict(
        dataloader=dict(det=LOADER, seg=LOADER),
        max_iters=10,
        task_weights=dict(det=1.0, seg=1.0))
    with pytest.raises(RuntimeError) as info:
        SIMTTrainLoop(_runner(detr, 2), **args)
    msg = str(info.value)
    assert "task 'det' runs a collective" in msg
    assert 'DETRHead.loss_by_feat_single' in msg and 'reduce_mean' in msg
    assert 'local_normalisers' in msg and 'per_iteration' in msg
    # every process runs one task per iteration: the collectives pair;
    # (the fake runner then lacks the SIMT wrapper, the next check)
    with pytest.raises(TypeError, match='SIMTDistributedWrapper'):
        SIMTTrainLoop(_runner(detr, 2), task_sampling='per_iteration', **args)
    # one process: nothing to pair with (the dataloaders are fake: the
    # loop gets as far as building them)
    with pytest.raises(Exception) as one:
        SIMTTrainLoop(_runner(detr, 1), **args)
    assert 'collective' not in str(one.value)
