"""The GLID generalist (issue 23): four task models of three toolboxes on
one Swin + Bi-FPN + query decoder (``GPPFMultiTaskModel.shared_parts``),
and the heads' per-process loss normalisers that SIMT needs."""
import copy

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.structures import InstanceData

import glid_mm  # noqa: F401
from glid_test_helpers.generalist import (TASK_CONFIGS, build, resolved_config,
                                          task_batch)

SHARED = ('neck', 'decoder.input_proj', 'decoder.level_embed',
          'decoder.layers')
TASKS = ('det', 'seg', 'depth', 'pose')


@pytest.fixture(scope='module')
def resolved(data_root):
    return resolved_config()


@pytest.fixture(scope='module')
def model_cfg(resolved):
    return resolved['model']


@pytest.fixture(scope='module')
def model(model_cfg):
    return build(model_cfg)


def _get(module, path):
    for step in path.split('.'):
        module = getattr(module, step)
    return module


def test_shared_parts_are_one_module(model):
    assert tuple(model.tasks) == TASKS
    assert model.shared_parts == SHARED
    for part in SHARED:
        shared = _get(model, part)
        for task in TASKS:
            assert _get(model.tasks[task], part) is shared, (task, part)
    # the queries and the heads stay per task
    queries = [model.tasks[t].decoder.queries for t in TASKS]
    assert len({id(q) for q in queries}) == 4
    assert model.tasks.pose.decoder.queries.num_queries == 17


def test_state_dict_holds_each_shared_tensor_once(model):
    keys = list(model.state_dict())
    params = dict(model.named_parameters())
    assert any(k.startswith('neck.blocks.') for k in keys)
    assert any(k.startswith('decoder.layers.') for k in keys)
    # the single-task names: neck.*, decoder.layers.*, as in a GLID
    # single-task checkpoint; none under a task
    for task in TASKS:
        prefix = f'tasks.{task}.'
        assert not any(
            k.startswith(prefix + p) for k in keys
            for p in ('neck.', 'decoder.layers.', 'decoder.input_proj.',
                      'decoder.level_embed', 'backbone.')), task
        assert any(k.startswith(prefix + 'decoder.queries.') for k in keys)
    # each parameter object counted once
    assert len(params) == len({id(p) for p in model.parameters()})
    n_neck = sum(p.numel() for p in model.neck.parameters())
    assert n_neck == sum(p.numel() for n, p in params.items()
                         if n.startswith('neck.'))


def test_a_task_step_reaches_the_shared_parts_and_its_head_only(
        model, resolved):
    model.train()
    model.zero_grad(set_to_none=True)
    data = model.data_preprocessor(task_batch(resolved, 'seg'), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    grads = {
        n: p.grad is not None and bool(p.grad.abs().sum() > 0)
        for n, p in model.named_parameters()
    }
    assert any(v for n, v in grads.items() if n.startswith('neck.'))
    assert any(v for n, v in grads.items() if n.startswith('decoder.layers.'))
    assert any(v for n, v in grads.items() if n.startswith('tasks.seg.'))
    for task in ('det', 'depth', 'pose'):
        assert not any(v for n, v in grads.items()
                       if n.startswith(f'tasks.{task}.')), task


@pytest.mark.parametrize(
    'task, part, change, match',
    [
        # another width: a shape
        ('depth', 'neck', dict(out_channels=48),
         r"'neck' of tasks\['depth'\] differs from that of tasks\['det'\] "
         r"\(\(top\).out_channels: 32 vs 48\)"),
        # the same shapes, another setting: the decoder's drop path and
        # the Bi-FPN's BN momentum would silently be the first task's
        ('seg', 'decoder', dict(drop_path_rate=0.3),
         r"'decoder.layers' of tasks\['seg'\].*drop_prob"),
        ('pose', 'neck',
         dict(norm_cfg=dict(type='CrossTaskSyncBN', momentum=0.1, eps=0.001)),
         r"'neck' of tasks\['pose'\].*momentum"),
    ])
def test_a_differing_shared_part_is_refused(model_cfg, task, part, change,
                                            match):
    tasks = copy.deepcopy(model_cfg['tasks'])
    tasks[task][part].update(change)
    with pytest.raises(ValueError, match=match):
        build(model_cfg, tasks=tasks)


@pytest.mark.parametrize('parts, error, match', [
    (('backbone', ), ValueError, r"reserved: \['backbone'\]"),
    (('neck', 'neck.blocks'), ValueError,
     r"inside another: \[\('neck', 'neck.blocks'\)\]"),
    (('neck', 'neck'), ValueError, r"repeated: \['neck'\]"),
    (('decoder.no_such_part', ), KeyError,
     r"tasks\['det'\].*no submodule 'decoder.no_such_part'"),
    (('neck-1', ), ValueError, 'dotted'),
])
def test_bad_shared_parts(model_cfg, parts, error, match):
    with pytest.raises(error, match=match):
        build(model_cfg, shared_parts=parts)


def test_gppf_model_shares_the_backbone_only_by_default():
    import inspect

    from glid_mm.models.algorithms.gppf_multi_task_model import \
        GPPFMultiTaskModel
    default = inspect.signature(GPPFMultiTaskModel).parameters['shared_parts']
    assert default.default == ()


@pytest.mark.parametrize('task', TASKS)
def test_split_checkpoint_predicts_as_the_generalist(model, resolved, task):
    """The task's part of the generalist's state dict
    (:func:`split_multi_task`) loads into the task's single-task config
    with no missing or unexpected key, and that model predicts what the
    generalist predicts for the task."""
    from mmengine.registry import DefaultScope

    from glid_mm.models.converters.multi_task_split import (multi_task_names,
                                                            split_multi_task)
    from glid_mm.utils.load_check import load_and_report
    from glid_mm.utils.mim import load_config
    state = model.state_dict()
    assert multi_task_names(state) == list(TASKS)
    part = split_multi_task(state, task)
    assert not any(k.startswith('tasks.') for k in part)
    toolbox, path = TASK_CONFIGS[task]
    cfg = load_config(path)
    with DefaultScope.overwrite_default_scope(toolbox):
        from mmengine.config import ConfigDict
        from mmengine.registry import MODELS

        from glid_mm.utils.gppf_task_configs import single_task_model
        single = MODELS.build(ConfigDict(single_task_model(cfg)))
        report = load_and_report(single, part)
        assert report['missing'] == [] and report['unexpected'] == [], task
        data = task_batch(resolved, task, n=1, split='val_dataloader')
        model.eval()
        single.eval()
        with torch.no_grad():
            ref = model.test_step(copy.deepcopy(data))[0]
            got = single.test_step(copy.deepcopy(data))[0]
    fields = dict(
        det=[('pred_instances', 'bboxes'), ('pred_instances', 'scores')],
        seg=[('seg_logits', 'data')],
        depth=[('pred_depth_map', 'data')],
        pose=[('pred_instances', 'keypoints'),
              ('pred_instances', 'keypoint_scores')])[task]
    for field, key in fields:
        a, b = getattr(getattr(got, field),
                       key), getattr(getattr(ref, field), key)
        torch.testing.assert_close(
            torch.as_tensor(a), torch.as_tensor(b), msg=f'{task} {key}')


def test_split_refuses_what_it_cannot_split():
    from glid_mm.models.converters.multi_task_split import split_multi_task
    with pytest.raises(KeyError, match='not a multi-task state dict'):
        split_multi_task({'backbone.w': torch.zeros(1)}, 'det')
    with pytest.raises(KeyError, match=r"its tasks are \['seg'\]"):
        split_multi_task({'tasks.seg.w': torch.zeros(1)}, 'det')


# --- DETR head: local normalisers -----------------------------------------


class _FakeWorld:
    """``torch.distributed`` seen as initialised with 2 processes; every
    all-reduce is recorded and leaves the tensor as it is (both processes
    holding the same value)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        monkeypatch.setattr(torch_dist, 'is_initialized', lambda: True)
        monkeypatch.setattr(torch_dist, 'get_world_size', lambda *a: 2)

        def all_reduce(tensor, *args, **kwargs):
            self.calls += 1
            tensor.mul_(2)  # SUM of two equal halves

        monkeypatch.setattr(torch_dist, 'all_reduce', all_reduce)


def _detr_inputs(head, n_img=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = 12
    cls_scores = torch.randn(
        n_img, Q, head.cls_out_channels, generator=g, requires_grad=True)
    bbox_preds = torch.rand(n_img, Q, 4, generator=g).clamp(0.05, 0.95)
    bbox_preds.requires_grad_(True)
    gts, metas = [], []
    for i in range(n_img):
        n = 2 + i
        xy = torch.rand(n, 2, generator=g) * 60
        wh = torch.rand(n, 2, generator=g) * 30 + 5
        gts.append(
            InstanceData(
                bboxes=torch.cat([xy, xy + wh], 1),
                labels=torch.randint(0, head.num_classes, (n, ), generator=g)))
        metas.append(dict(img_shape=(96, 128)))
    return cls_scores, bbox_preds, gts, metas


@pytest.mark.parametrize('focal, sync_cls', [(False, False), (True, False),
                                             (False, True)])
def test_detr_local_normalisers_equal_mmdet_in_one_process(
        model, monkeypatch, focal, sync_cls):
    head = copy.deepcopy(model.tasks.det.bbox_head)
    head.sync_cls_avg_factor = sync_cls
    if focal:
        from mmdet.registry import MODELS
        head.loss_cls = MODELS.build(
            dict(
                type='QualityFocalLoss',
                _scope_='mmdet',  # whatever scope an earlier test left
                use_sigmoid=True,
                beta=2.0,
                loss_weight=2.0))
    args = _detr_inputs(head)
    plain = head.loss_by_feat_single(*args)
    world = _FakeWorld(monkeypatch)
    with head.local_normalisers():
        local = head.loss_by_feat_single(*args)
    assert world.calls == 0  # no collective
    assert len(plain) == len(local) == 3
    for a, b in zip(plain, local):
        # mmdet's synced class normaliser is a [1] tensor (loss [1])
        torch.testing.assert_close(a.reshape(-1), b.reshape(-1))
    # without the context, mmdet's head all-reduces its normalisers
    head.loss_by_feat_single(*args)
    assert world.calls >= 1


def test_mask_head_local_count(model, monkeypatch):
    from glid_mm.models.heads import GLIDMaskHead
    head = next(m for m in model.tasks.seg.modules()
                if isinstance(m, GLIDMaskHead))
    world = _FakeWorld(monkeypatch)
    scores = torch.zeros(1, 1)
    with head.local_normalisers():
        assert float(head._mask_count(scores, 7)) == 7.0
    assert world.calls == 0
    head._mask_count(scores, 7)
    assert world.calls == 1
    with pytest.raises(ValueError, match='positive'):
        with head.given_mask_count(0):
            pass


def test_pretraining_checkpoint_loads_into_every_task(model_cfg):
    """A nano GLID pre-training state dict (what ``load_from`` gives):
    backbone, Bi-FPN and decoder blocks load into the shared parts, the
    one pre-trained [CLS] into every task's queries (as single-task
    fine-tuning starts from it); the pre-training-only parts stay
    unexpected and the task heads missing."""
    from mmengine.registry import MODELS, DefaultScope

    from glid_mm.utils.load_check import load_and_report
    from glid_mm.utils.mim import load_config
    cfg = load_config(
        'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        torch.manual_seed(5)
        state = MODELS.build(cfg.model).state_dict()
    generalist = build(model_cfg)
    report = load_and_report(generalist, state, 'pre-training')
    cls = state['decoder.queries.cls_token']
    for task in TASKS:
        queries = generalist.tasks[task].decoder.queries
        assert torch.equal(queries.cls_token, cls), task
        assert f'tasks.{task}.decoder.queries.cls_token' in report['loaded']
    assert torch.equal(generalist.neck.lateral_convs[0].conv.weight,
                       state['neck.lateral_convs.0.conv.weight'])
    assert 'decoder.queries.mask_token' in report['unexpected']
    assert 'decoder.queries.cls_token' not in report['unexpected']
    assert not [
        k for k in report['missing']
        if k.startswith(('neck.', 'decoder.layers.', 'backbone.'))
    ]
    assert report['mismatch'] == []
