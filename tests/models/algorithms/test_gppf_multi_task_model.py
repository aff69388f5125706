"""GPPFMultiTaskModel: mmpretrain + mmseg task models on one lego backbone."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.structures import PixelData
from mmpretrain.structures import DataSample
from mmseg.structures import SegDataSample

import glid_mm  # noqa: F401
from glid_mm.models.algorithms.gppf_multi_task_model import GPPFMultiTaskModel
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
from glid_mm.utils.gppf_task_configs import resolve_task_configs

W = 4  # LegoResNet base_channels: stage outputs 16 / 32 / 64 / 128
BACKBONE = dict(
    type='LegoResNet',
    task_names=('cls', 'seg'),
    depth=50,
    num_units=2,
    stem_channels=8,
    base_channels=W,
    zero_init_residual=False)
TASKS = dict(
    cls=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        data_preprocessor=dict(num_classes=2, mean=[0.] * 3, std=[255.] * 3),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=W * 32)),
    seg=dict(
        _scope_='mmseg',
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[0.] * 3,
            std=[255.] * 3,
            size_divisor=16),
        decode_head=dict(
            type='FCNHead',
            in_channels=W * 32,
            in_index=3,
            channels=8,
            num_convs=1,
            num_classes=3,
            norm_cfg=dict(type='BN')),
        train_cfg=dict(),
        test_cfg=dict(mode='whole')))


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='GPPFMultiTaskModel',
        backbone=BACKBONE,
        tasks=copy.deepcopy(TASKS))
    cfg.update(kwargs)
    return ROOT_MODELS.build(dict(cfg, _scope_='mmdet'))


def batch(task, n=2):
    torch.manual_seed(1)
    if task == 'cls':
        samples = [DataSample().set_gt_label(i % 2) for i in range(n)]
        inputs = [
            torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8)
            for _ in range(n)
        ]
    else:
        samples = []
        for _ in range(n):
            s = SegDataSample(
                metainfo=dict(img_shape=(48, 40), ori_shape=(48, 40)))
            s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 48, 40)))
            samples.append(s)
        inputs = [
            torch.randint(0, 255, (3, 48, 40), dtype=torch.uint8)
            for _ in range(n)
        ]
    for s in samples:
        s.set_metainfo(dict(task=task))
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(scope='module')
def model():
    return build()


def losses_and_grads(model, task):
    model.zero_grad(set_to_none=True)
    model.train()
    data = model.data_preprocessor(batch(task), True)
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    loss.backward()
    return log_vars


def test_backbone_shared_by_identity(model):
    assert isinstance(model.backbone, LegoResNet)
    for task_model in model.tasks.values():
        assert task_model.backbone is model.backbone
    keys = model.state_dict().keys()
    assert any(k.startswith('backbone.lego.') for k in keys)
    assert not any('.backbone.' in k for k in keys)
    names = [n for n, _ in model.named_parameters()]
    assert len(names) == len(set(names)) == len(list(model.parameters()))
    assert model.task_scopes == dict(cls='mmpretrain', seg='mmseg')


@pytest.mark.parametrize('task, other', [('cls', 'seg'), ('seg', 'cls')])
def test_task_step_uses_its_path_only(model, task, other):
    log_vars = losses_and_grads(model, task)
    assert log_vars and all(k == 'loss' or k.startswith(f'{task}.')
                            for k in log_vars)
    backbone = model.backbone
    assert backbone.controllers[task].grad.abs().min() > 0
    assert backbone.controllers[other].grad is None
    for name, p in backbone.lego.named_parameters():  # soft: every unit
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in model.tasks[task].named_parameters():
        assert p.grad is not None, name
    assert all(p.grad is None for p in model.tasks[other].parameters())


def test_train_step_and_predict(model):
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    log_vars = model.train_step(batch('cls'), optim)
    assert 'cls.loss' in log_vars
    model.eval()
    preds = model.val_step(batch('seg'))
    assert preds[0].pred_sem_seg.data.shape == (1, 48, 40)
    preds = model.test_step(batch('cls'))
    assert preds[0].pred_score.shape == (2, )
    with pytest.raises(KeyError, match="unknown task 'det'"):
        model(torch.zeros(1, 3, 32, 32), mode='tensor', task='det')


def test_loss_weights_scale_the_task_losses():
    weighted = build(loss_weights=dict(cls=3.0))
    base = build()
    torch.manual_seed(5)
    a = losses_and_grads(base, 'cls')['cls.loss']
    torch.manual_seed(5)
    b = losses_and_grads(weighted, 'cls')['cls.loss']
    torch.testing.assert_close(b, 3 * a)


def test_bad_batches(model):
    data = batch('cls')
    data['data_samples'][1].set_metainfo(dict(task='seg'))
    with pytest.raises(ValueError, match='mixes tasks'):
        model.data_preprocessor(data, True)
    data = batch('cls')
    del data['data_samples'][0].task
    with pytest.raises(ValueError, match='no metainfo\\["task"\\]'):
        model.data_preprocessor(data, True)
    data = batch('cls')
    for s in data['data_samples']:
        s.set_metainfo(dict(task='depth'))
    with pytest.raises(KeyError, match="unknown task 'depth'"):
        model.data_preprocessor(data, True)
    with pytest.raises(ValueError, match='needs data samples'):
        model(torch.zeros(1, 3, 32, 32), mode='tensor')


def _tasks_with(**changes):
    tasks = copy.deepcopy(TASKS)
    for path, value in changes.items():
        task, key = path.split('__')
        tasks[task][key] = value
    return tasks


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(tasks=dict()), ValueError, 'non-empty dict'),
    (dict(tasks=_tasks_with(cls__backbone=dict(type='ResNet', depth=18))),
     ValueError, 'defines its own backbone'),
    (dict(tasks=_tasks_with(seg__pretrained='x.pth')), ValueError,
     'pretrained'),
    (dict(
        tasks=_tasks_with(
            seg__decode_head=dict(
                TASKS['seg']['decode_head'], norm_cfg=dict(type='SyncBN')))),
     ValueError, 'uses SyncBN'),
    (dict(tasks=dict(TASKS, det=dict(TASKS['cls']))), KeyError,
     "tasks \\['det'\\] have no controller"),
    (dict(loss_weights=dict(det=1.0)), KeyError, 'unknown tasks'),
    (dict(loss_weights=dict(cls=0.0)), ValueError, 'must be > 0'),
    (dict(data_preprocessor=dict(type='ClsDataPreprocessor')), ValueError,
     'takes no data_preprocessor'),
    (dict(tasks=dict(cls=[1])), TypeError, 'model config dict'),
])
def test_bad_configs(kwargs, error, match):
    with pytest.raises(error, match=match):
        build(**kwargs)


def test_registered_for_three_toolboxes():
    from glid_mm.registry import MODELS
    for scope in ('mmdet', 'mmseg', 'mmpretrain'):
        assert MODELS.registries()[scope].get(
            'GPPFMultiTaskModel') is GPPFMultiTaskModel


def test_task_given_by_config_path(tmp_path):
    """``dict(from_config=<path>, **changes)``: the model of a single-task
    config, without its backbone, in its default scope, with its top-level
    data preprocessor (mmpretrain keeps it there) and the changes merged."""
    path = tmp_path / 'cls_task.py'
    path.write_text(
        "default_scope = 'mmpretrain'\n"
        'model = dict(\n'
        "    type='ImageClassifier',\n"
        "    backbone=dict(type='ResNet', depth=18),\n"
        "    neck=dict(type='GlobalAveragePooling'),\n"
        f"    head=dict(type='LinearClsHead', num_classes=2, "
        f'in_channels={W * 32}))\n'
        'data_preprocessor = dict(\n'
        '    num_classes=2, mean=[0., 0., 0.], std=[255., 255., 255.])\n')
    ref = dict(from_config=str(path), head=dict(num_classes=3))
    # read once, when the runner is built (TaskConfigRunner); the model
    # itself refuses a reference
    with pytest.raises(TypeError, match='model.tasks.cls is a task-config'):
        build(tasks=dict(cls=ref, seg=copy.deepcopy(TASKS['seg'])))
    tasks = resolve_task_configs(
        dict(model=dict(tasks=dict(cls=ref, seg=copy.deepcopy(
            TASKS['seg'])))))['model']['tasks']
    model = build(tasks=tasks)
    assert model.task_scopes == dict(cls='mmpretrain', seg='mmseg')
    assert model.tasks.cls.backbone is model.backbone
    assert model.tasks.cls.head.num_classes == 3
    assert type(model.tasks.cls.data_preprocessor).__name__ == \
        'ClsDataPreprocessor'
    log_vars = losses_and_grads(model, 'cls')
    assert 'cls.loss' in log_vars
    with pytest.raises(FileNotFoundError, match='model.tasks.cls'):
        resolve_task_configs(
            dict(
                model=dict(
                    tasks=dict(cls=dict(from_config=str(tmp_path /
                                                        'no.py'))))))
