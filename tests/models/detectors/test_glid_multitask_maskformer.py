"""GLIDMultiTaskMaskFormer (Sec. 4 / 5.3 multi-task fine-tuning) on the two
bundled COCO panoptic samples: shared model, one linear head per task,
tasks evenly in a batch, three metrics from one validation pass.

Nano model at 160x120; about 40 s on an idle CPU core.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model
from glid_test_helpers.mask_oracle import ground_truth_outputs

CFG = 'configs/glid/glid-mtseg_swin-nano_1xb3-500i_coco-panoptic-samples-' \
      '320x240.py'


@pytest.fixture
def cfg(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, CFG))
    root = osp.join(data_root, 'coco_panoptic') + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = root
    cfg.val_evaluator[0].ann_file = root + 'panoptic_examples.json'
    cfg.val_evaluator[0].seg_prefix = root + 'panoptic_examples/'
    cfg.val_evaluator[1].ann_file = root + \
        'panoptic_coco_detection_format.json'
    cfg.val_dataloader.dataset.pipeline[1].scale = (160, 120)  # CPU size
    cfg.model.backbone.drop_path_rate = 0.0
    cfg.model.decoder.drop_path_rate = 0.0
    init_default_scope('mmdet')
    return cfg


def _dataset(cfg, with_annotations_first=True):
    from mmdet.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    if with_annotations_first:
        load, resize, annotations, pack = dataset_cfg.pipeline
        annotations = dict(
            type='LoadPanopticAnnotations',
            with_bbox=True,
            with_mask=True,
            with_seg=True)
        dataset_cfg.pipeline = [load, annotations, resize, pack]
    return DATASETS.build(dataset_cfg)


def test_only_the_linear_heads_are_per_task(cfg):
    model = build_model(cfg.model)
    assert set(model.task_heads) == {'semantic', 'instance', 'panoptic'}
    per_task = {
        name
        for name, _ in model.named_parameters()
        if name.startswith('task_heads.')
    }
    assert per_task == {
        f'task_heads.{t}.predictor.fc.{w}'
        for t in model.tasks
        for w in ('weight', 'bias')
    }
    # class outputs: semantic 133 + 1, instance 80 + 1, panoptic 133 + 1;
    # mask embedding 32
    sizes = {
        t: model.task_heads[t].predictor.fc.out_features
        for t in model.tasks
    }
    assert sizes == dict(
        semantic=134 + 32, instance=81 + 32, panoptic=134 + 32)
    assert not hasattr(model, 'panoptic_head')
    bad = copy.deepcopy(cfg.model)
    bad.tasks = ('semantic', 'depth')
    with pytest.raises(ValueError, match='tasks'):
        build_model(bad)


def test_batches_hold_tasks_evenly_and_rotate(cfg):
    model = build_model(cfg.model)
    first = model.assign_tasks(3)
    second = model.assign_tasks(3)
    assert sorted(first) == sorted(model.tasks)
    assert sorted(second) == sorted(model.tasks)
    assert first != second  # each image cycles through the tasks
    six = model.assign_tasks(6)
    assert all(six.count(t) == 2 for t in model.tasks)


def test_task_targets(cfg):
    model = build_model(cfg.model)
    sample = _dataset(cfg)[0]['data_samples']
    n_things = len(sample.gt_instances)
    sem = model._task_sample(sample, 'semantic')
    ins = model._task_sample(sample, 'instance')
    pan = model._task_sample(sample, 'panoptic')
    assert len(sem.gt_instances) == 0 and 'gt_sem_seg' in sem
    assert len(ins.gt_instances) == n_things and 'gt_sem_seg' not in ins
    assert len(pan.gt_instances) == n_things and 'gt_sem_seg' in pan
    assert 'gt_sem_seg' in sample  # the original is untouched


def test_every_task_loss_and_head_gradients(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.train()
    dataset = _dataset(cfg)
    batch = pseudo_collate([dataset[0], dataset[1], dataset[0]])
    data = model.data_preprocessor(batch, training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    for task in model.tasks:
        for term in ('loss_cls', 'loss_mask', 'loss_dice'):
            assert f'{task}.{term}' in losses
            assert f'{task}.d0.{term}' in losses
    sum(losses.values()).backward()
    for task in model.tasks:
        grad = model.task_heads[task].predictor.fc.weight.grad
        assert grad is not None and grad.abs().sum() > 0, task
    assert model.decoder.queries.query_embed.grad.abs().sum() > 0


@pytest.mark.slow
def test_one_validation_pass_reports_three_metrics(cfg, tmp_path):
    """PQ, instance segm AP (things only) and mIoU from one predict pass of
    the real model, through the config's evaluators (random weights: the
    shapes are checked here, the values in
    test_validation_metrics_of_ground_truth_predictions)."""
    from mmengine.evaluator import Evaluator
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.eval()
    dataset = _dataset(cfg, with_annotations_first=False)
    evaluator = Evaluator(copy.deepcopy(cfg.val_evaluator))
    evaluator.dataset_meta = dataset.metainfo
    batch = pseudo_collate([dataset[0], dataset[1]])
    with torch.no_grad():
        outputs = model.val_step(batch)
    for sample in outputs:
        assert 'pred_panoptic_seg' in sample
        assert 'pred_instances' in sample
        sem = sample.pred_sem_seg.sem_seg
        assert tuple(sem.shape[-2:]) == tuple(sample.ori_shape)
        assert sem.max() < 133
    evaluator.process(outputs, batch)
    metrics = evaluator.evaluate(len(dataset))
    assert 0.0 <= metrics['coco_panoptic/PQ'] <= 100.0
    assert -1.0 <= metrics['coco/segm_mAP'] <= 1.0
    assert 0.0 <= metrics['mIoU'] <= 100.0


@pytest.mark.slow
@pytest.mark.parametrize('shuffle', [False, True])
def test_validation_metrics_of_ground_truth_predictions(cfg, shuffle):
    """The model's inference path (fusion heads, semantic inference, resize
    to the original size) and the three evaluators, fed head outputs that
    encode the ground truth: PQ, instance mask AP and mIoU are high, and
    low when the classes are wrong (what a broken model would give). Not
    100: the masks pass through the 160x120 input size (measured: PQ 84,
    mask AP 0.52, its 0.5:0.95 IoU range penalising the boundaries of
    small things most, mIoU 86)."""
    from mmengine.evaluator import Evaluator
    model = build_model(cfg.model)
    model.eval()
    dataset = _dataset(cfg, with_annotations_first=False)
    evaluator = Evaluator(copy.deepcopy(cfg.val_evaluator))
    evaluator.dataset_meta = dataset.metainfo
    batch = pseudo_collate([dataset[0], dataset[1]])
    data = model.data_preprocessor(batch, training=False)
    shape = tuple(data['inputs'].shape[-2:])
    for task, head in model.task_heads.items():
        head.predict = lambda x, samples, task=task, head=head: \
            ground_truth_outputs(head, task, samples, shape, shuffle)
    with torch.no_grad():
        outputs = model.predict(data['inputs'], data['data_samples'])
    evaluator.process(outputs, batch)
    metrics = evaluator.evaluate(len(dataset))
    good = (metrics['coco_panoptic/PQ'], metrics['coco/segm_mAP'],
            metrics['mIoU'])
    if shuffle:
        assert good[0] < 10 and good[1] < 0.1 and good[2] < 10, good
    else:
        assert good[0] > 75 and good[1] > 0.4 and good[2] > 75, good


@pytest.mark.slow
def test_mask_normaliser_is_mmdets(cfg, monkeypatch):
    """The count handed to every task head equals what mmdet's
    Mask2FormerHead would all-reduce for the same targets: positives per
    image, at least 1 (an image without things still counts 1 for the
    instance task)."""
    import functools

    from mmdet.models.dense_heads import Mask2FormerHead
    from mmdet.models.dense_heads import mask2former_head as m2f
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.train()
    model.task_assignment = 'all'
    dataset = _dataset(cfg)
    batch = pseudo_collate([dataset[0], dataset[1], dataset[0]])
    sample = batch['data_samples'][2]
    sample.gt_instances = sample.gt_instances[:0]  # no things here
    data = model.data_preprocessor(batch, training=True)
    handed = []
    for task in model.tasks:
        head = model.task_heads[task]

        def recording(value, context=head.given_mask_count):
            handed.append(value)
            return context(value)

        monkeypatch.setattr(head, 'given_mask_count', recording)
    with torch.no_grad():
        model.loss(data['inputs'], data['data_samples'])
        x = model.extract_feat(data['inputs'])
        seen = []
        monkeypatch.setattr(m2f, 'reduce_mean', lambda t:
                            (seen.append(float(t)), t)[1])
        expected = []
        for task in model.tasks:
            head = model.task_heads[task]
            # mmdet's own single-block loss, which all-reduces the count
            monkeypatch.setattr(
                head, '_loss_by_feat_single',
                functools.partial(Mask2FormerHead._loss_by_feat_single, head))
            seen.clear()
            head.loss_by_feat(*head(x),
                              *model._task_targets(task, data['data_samples']))
            assert len(set(seen)) == 1  # one count, every decoder block
            expected.append(seen[0])
    assert handed == expected
    instance = model.tasks.index('instance')
    things = [len(s.gt_instances) for s in data['data_samples']]
    assert handed[instance] == sum(max(n, 1) for n in things)
