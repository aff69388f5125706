"""Every model component glid_mm registers passes gradient to every
trainable parameter.

One parametrised test builds each registered component (mmdet / mmseg /
mmpose / mmpretrain ``MODELS`` classes defined under ``glid_mm.models``)
at a tiny size, runs a forward pass and a scalar loss (the component's
own loss dict where it has one, else a fixed random projection of its float
outputs: a plain sum would hide gradients, e.g. behind a BatchNorm whose
output sum does not depend on its input), calls backward and checks that
every parameter with ``requires_grad`` got a finite gradient that is not
all zero. Parameters that are unused in the tested mode by design are
listed in :data:`UNUSED` with the reason, and the test checks that they
indeed get none. A component without parameters must pass gradient to the
tensors its run marks with ``leaf``.

A registered component that is neither in :data:`TINY` nor in :data:`SKIP`
(with the reason, naming the test file that covers it) fails
``test_every_registered_module_is_covered``.
"""
import fnmatch
import os.path as osp
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

import glid_mm  # noqa: F401
from glid_mm.registry import MODELS, build_model

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- configs


def _swin(embed=8, depths=(1, 1, 1, 1), **kwargs):
    """A Swin of width 8 with one block per stage and window 2."""
    cfg = dict(
        arch=dict(
            embed_dims=embed, depths=list(depths),
            num_heads=[1] * len(depths)),
        img_size=64,
        out_indices=tuple(range(len(depths))),
        drop_path_rate=0.0)
    cfg.update(kwargs)
    return cfg


SWIN_FT = dict(
    _swin(window_size=2, pad_small_map=True),
    type='mmpretrain.SwinTransformer')
NECK = dict(
    type='BiFPN', in_channels=[8, 16, 32, 64], out_channels=8, num_repeats=1)
DECODER = dict(
    type='GLIDDecoder',
    in_channels=8,
    embed_dims=16,
    num_layers=3,
    num_heads=2,
    feedforward_channels=32)
MASK_TRAIN_CFG = dict(
    num_points=64,
    oversample_ratio=3.0,
    importance_sample_ratio=0.75,
    assigner=dict(
        type='HungarianAssigner',
        match_costs=[
            dict(type='ClassificationCost', weight=2.0),
            dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
            dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
        ]),
    sampler=dict(type='MaskPseudoSampler'))
DETR_TRAIN_CFG = dict(
    assigner=dict(
        type='HungarianAssigner',
        match_costs=[
            dict(type='ClassificationCost', weight=1.),
            dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0)
        ]))


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _decoded(leaf, levels=4, C=16, CM=8, S=8, L=2, B=2, Q=3):
    """``GLIDDecoded``: a pyramid of width CM (1/4 map S x S) and the query
    states of L decoder blocks. The heads read the 1/4 map only, so only it
    (and the query states) are checked for gradient."""
    from glid_mm.models.decoders.glid_decoded import GLIDDecoded
    feats = tuple(
        _randn(B, CM, S // 2**i, S // 2**i, seed=i) for i in range(levels))
    feats = (leaf(feats[0]), ) + feats[1:]
    return GLIDDecoded(feats, leaf(_randn(L, B, Q, C, seed=9)))


def _det_sample(size=32, n=2, masks=False, sem=False, num_classes=3):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    s = DetDataSample(
        metainfo=dict(
            img_shape=(size, size),
            batch_input_shape=(size, size),
            pad_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1., 1.)))
    boxes = torch.tensor([[2., 3., 20., 18.], [12., 10., 30., 31.]])[:n]
    s.gt_instances = InstanceData(
        bboxes=boxes, labels=torch.arange(n) % num_classes)
    if masks:
        m = np.zeros((n, size, size), np.uint8)
        for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
            m[i, y0:y1, x0:x1] = 1
        s.gt_instances.masks = BitmapMasks(m, size, size)
    if sem:
        seg = torch.full((1, size, size), 255, dtype=torch.long)
        seg[:, size // 2:, :] = num_classes  # a stuff class
        seg[:, :size // 2, :size // 2] = 0
        s.gt_sem_seg = PixelData(sem_seg=seg)
    return s


# ------------------------------------------------------------ the runs
# each: run(module, leaf) -> outputs (a loss dict, or tensors projected to a
# scalar); ``leaf(t)`` marks an input whose gradient is checked too


def run_bifpn(m, leaf):
    return m([
        leaf(_randn(2, c, 16 // 2**i, 16 // 2**i, seed=i))
        for i, c in enumerate([4, 8, 8, 16])
    ])


def run_glid(m, leaf):
    from mmpretrain.structures import DataSample
    samples = []
    for b in range(2):
        s = DataSample()
        mask = torch.zeros(2, 2, dtype=torch.bool)
        mask.view(-1)[[b, 3]] = True  # 2 of the 4 32-px units masked
        s.set_mask(mask)
        samples.append(s)
    return m(_randn(2, 3, 64, 64), samples, mode='loss')


def run_glid_detr(m, leaf):
    samples = [_det_sample(64), _det_sample(64, n=1)]
    return m(_randn(2, 3, 64, 64), samples, mode='loss')


def run_detr_head(m, leaf):
    hidden = leaf(_randn(2, 2, 3 + 4, 16))  # [L, B, one2one + one2many, C]
    return m.loss(hidden, [_det_sample(), _det_sample(n=1)])


def run_decoder(m, leaf):
    # feat_levels (3, 2, 1): the 1/4 map is not attended to
    feats = [_randn(2, 8, 16 // 2**i, 16 // 2**i, seed=i) for i in range(4)]
    return m([feats[0]] + [leaf(f) for f in feats[1:]])


def run_depth_head(m, leaf):
    from mmseg.structures import SegDataSample
    samples = []
    for b in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(32, 32)))
        depth = 1 + _randn(1, 32, 32, seed=b).abs()
        depth[:, :4] = 0  # invalid pixels
        s.gt_depth_map = PixelData(data=depth)
        samples.append(s)
    return m.loss(_decoded(leaf, Q=4), samples, None)


def run_mask_head(m, leaf):
    samples = [
        _det_sample(masks=True, sem=True),
        _det_sample(n=1, masks=True, sem=True)
    ]
    return m.loss(_decoded(leaf), samples)


def run_mask_predictor(m, leaf):
    return m(leaf(_randn(2, 2, 3, 16)), leaf(_randn(2, 8, 6, 5, seed=1)))


def run_mask_seg_head(m, leaf):
    from mmseg.structures import SegDataSample
    samples = []
    for b in range(2):
        s = SegDataSample(
            metainfo=dict(
                img_shape=(32, 32), pad_shape=(32, 32), ori_shape=(32, 32)))
        seg = torch.full((1, 32, 32), 255, dtype=torch.long)
        seg[:, :10] = b
        seg[:, 20:] = 3
        s.gt_sem_seg = PixelData(data=seg)
        samples.append(s)
    return m.loss(_decoded(leaf), samples, None)


def run_multitask_maskformer(m, leaf):
    samples = [
        _det_sample(64, masks=True, sem=True, num_classes=2)
        for _ in range(3)  # 'split': one sample per task
    ]
    return m(_randn(3, 3, 64, 64), samples, mode='loss')


def _pose_samples(K=3, size=8):
    from mmpose.structures import PoseDataSample
    samples = []
    for b in range(2):
        s = PoseDataSample(metainfo=dict(img_shape=(4 * size, 4 * size)))
        s.gt_fields = PixelData(heatmaps=_randn(K, size, size, seed=b).abs())
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, K))
        samples.append(s)
    return samples


def run_pose_head(m, leaf):
    return m.loss(_decoded(leaf, CM=8, Q=3), _pose_samples(), {})


def run_topdown(m, leaf):
    return m(_randn(2, 3, 32, 32), _pose_samples(size=8), mode='loss')


def run_pretrain_head(m, leaf):
    states = leaf(_randn(2, 3, 16))
    return dict(
        loss=m.loss(
            m(states), _randn(2, 3, 8, 12, seed=1),
            torch.tensor([[0, 2, 5], [1, 3, 4]])))


def run_queries(m, leaf):
    return (m.finetune_queries(2), m.pretrain_queries(leaf(_randn(2, 3, 8))))


def run_glid_swin(m, leaf):
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2] = True
    mask[1, :, 1:3] = True  # 8 of 16 8-px units masked in each image
    return m(leaf(_randn(2, 3, 32, 32)), mask)


def run_lego(m, leaf):
    with m.using_task('a'):
        return m(leaf(_randn(2, 3, 32, 32)))


def run_lit_decoder(m, leaf):
    from mmpretrain.structures import DataSample
    m.train_tokenizer(
        dict(
            texts=['ants', 'bees', 'two dogs', '2', '3'] * 2,
            tasks=dict(hymenoptera='cls', persons='count'),
            labels=dict(hymenoptera=['ants', 'bees'])))
    samples = []
    for task, cat, text in [('hymenoptera', 'cls', 'ants'),
                            ('persons', 'count', '3')]:
        s = DataSample()
        for key, val in dict(
                task=task, task_category=cat, gt_text=text).items():
            s.set_field(val, key, field_type='metainfo')
        samples.append(s)
    return m(_randn(2, 3, 32, 32), samples, mode='loss')


def run_text_decoder(m, leaf):
    tokens = torch.tensor([[1, 5, 7, 2], [1, 3, 3, 0]])
    return m(tokens, leaf(_randn(2, 5, 8)))


def run_pool_head(m, leaf):
    tokens = leaf(_randn(4, 5, 16))
    return dict(loss=m.loss(tokens, torch.tensor([0, 2, -1, 1])))


def run_m3i_decoder(m, leaf):
    from glid_mm.models.layers.m3i_geometry import grid_coords
    grid = grid_coords(3)
    return m(
        leaf(_randn(2, 5, 12)), grid[:5].expand(2, -1, -1),
        grid[5:].expand(2, -1, -1), torch.ones(2, 2),
        leaf(_randn(2, 1, 12, seed=1)))


def run_mixer(m, leaf):
    g = torch.Generator().manual_seed(0)
    mixed, _, _ = m(leaf(_randn(3, 3, 8, 8)), generator=g)
    return mixed


def run_sig_loss(m, leaf):
    pred = leaf(1 + _randn(2, 1, 4, 4).abs())
    target = 1 + _randn(2, 1, 4, 4, seed=1).abs()
    return dict(loss_depth=m(pred, target))


#: ``{class name: (scope, config, run)}``
TINY = {
    'BiFPN': ('mmdet',
              dict(
                  type='BiFPN',
                  in_channels=[4, 8, 8, 16],
                  out_channels=4,
                  num_repeats=2), run_bifpn),
    'GLID':
    ('mmpretrain',
     dict(
         type='GLID',
         backbone=dict(
             _swin(stage_cfgs=dict(block_cfgs=dict(window_size=2))),
             type='GLIDSwinTransformer',
             mask_mode='visible'),
         neck=NECK,
         decoder=dict(DECODER, with_mask_token=True),
         head=dict(type='GLIDPretrainHead', in_channels=16,
                   patch_size=32)), run_glid),
    'GLIDDETR': ('mmdet',
                 dict(
                     type='GLIDDETR',
                     backbone=SWIN_FT,
                     neck=NECK,
                     decoder=DECODER,
                     bbox_head=dict(
                         type='GLIDDETRHead',
                         num_classes=3,
                         embed_dims=16,
                         num_queries=3,
                         num_queries_one2many=4,
                         k_one2many=2,
                         loss_bbox=dict(type='L1Loss', loss_weight=5.0),
                         loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
                     train_cfg=DETR_TRAIN_CFG,
                     test_cfg=dict(max_per_img=3)), run_glid_detr),
    'GLIDDETRHead': ('mmdet',
                     dict(
                         type='GLIDDETRHead',
                         num_classes=3,
                         embed_dims=16,
                         num_queries=3,
                         num_queries_one2many=4,
                         k_one2many=2,
                         loss_bbox=dict(type='L1Loss', loss_weight=5.0),
                         loss_iou=dict(type='GIoULoss', loss_weight=2.0),
                         train_cfg=DETR_TRAIN_CFG), run_detr_head),
    'GLIDDecoder': ('mmdet', dict(DECODER, num_queries=3), run_decoder),
    'GLIDDepthHead': ('mmseg',
                      dict(
                          type='GLIDDepthHead',
                          num_queries=4,
                          in_channels=16,
                          feat_channels=8), run_depth_head),
    'GLIDMaskHead': ('mmdet',
                     dict(
                         type='GLIDMaskHead',
                         num_things_classes=3,
                         num_stuff_classes=1,
                         num_queries=3,
                         in_channels=16,
                         mask_channels=8,
                         train_cfg=MASK_TRAIN_CFG), run_mask_head),
    'GLIDMaskPredictor': ('mmdet',
                          dict(
                              type='GLIDMaskPredictor',
                              num_classes=3,
                              in_channels=16,
                              mask_channels=8), run_mask_predictor),
    'GLIDMaskSegHead': ('mmseg',
                        dict(
                            type='GLIDMaskSegHead',
                            num_classes=4,
                            num_queries=3,
                            in_channels=16,
                            mask_channels=8,
                            train_cfg=MASK_TRAIN_CFG), run_mask_seg_head),
    'GLIDMultiTaskMaskFormer':
    ('mmdet',
     dict(
         type='GLIDMultiTaskMaskFormer',
         backbone=SWIN_FT,
         neck=NECK,
         decoder=DECODER,
         panoptic_head=dict(
             type='GLIDMaskHead',
             num_things_classes=2,
             num_stuff_classes=1,
             num_queries=3,
             in_channels=16,
             mask_channels=8),
         train_cfg=MASK_TRAIN_CFG,
         test_cfg=dict(
             panoptic_on=True,
             semantic_on=False,
             instance_on=True,
             max_per_image=3,
             iou_thr=0.8,
             filter_low_score=True)), run_multitask_maskformer),
    'GLIDPoseHead': ('mmpose',
                     dict(
                         type='GLIDPoseHead',
                         num_keypoints=3,
                         in_channels=16,
                         feat_channels=8), run_pose_head),
    'GLIDPretrainHead':
    ('mmpretrain', dict(type='GLIDPretrainHead', in_channels=16,
                        patch_size=2), run_pretrain_head),
    'GLIDQueries': ('mmdet',
                    dict(
                        type='GLIDQueries',
                        embed_dims=8,
                        num_queries=3,
                        with_mask_token=True), run_queries),
    'GLIDSwinTransformer':
    ('mmpretrain',
     dict(
         _swin(
             depths=(1, 1),
             img_size=32,
             stage_cfgs=dict(block_cfgs=dict(window_size=2))),
         type='GLIDSwinTransformer'), run_glid_swin),
    'GLIDTopdownPoseEstimator': ('mmpose',
                                 dict(
                                     type='GLIDTopdownPoseEstimator',
                                     backbone=dict(SWIN_FT, img_size=32),
                                     neck=NECK,
                                     decoder=DECODER,
                                     head=dict(
                                         type='GLIDPoseHead',
                                         num_keypoints=3,
                                         in_channels=16,
                                         feat_channels=8)), run_topdown),
    'LegoResNet': ('mmdet',
                   dict(
                       type='LegoResNet',
                       task_names=('a', 'b'),
                       depth=18,
                       num_units=2,
                       stem_channels=4,
                       base_channels=4,
                       num_stages=2,
                       out_indices=(0, 1),
                       zero_init_residual=False), run_lego),
    'LegoSwinTransformer':
    ('mmdet',
     dict(
         type='LegoSwinTransformer',
         task_names=('a', 'b'),
         arch=dict(embed_dims=8, depths=(1, 1), num_heads=(1, 1)),
         window_size=2,
         drop_path_rate=0.0,
         out_indices=(0, 1),
         lego_downsample=True), run_lego),
    'LiTDecoder':
    ('mmpretrain',
     dict(
         type='LiTDecoder',
         backbone=dict(
             type='ResNet',
             depth=18,
             num_stages=1,
             stem_channels=8,
             base_channels=8,
             strides=(1, ),
             dilations=(1, ),
             out_indices=(0, )),
         decoder=dict(
             type='LiTTextDecoder',
             memory_dims=8,
             drop_rate=0.,
             arch=dict(embed_dims=16, num_heads=2, ffn_dims=32, num_layers=1)),
         tokenizer=dict(type='LiTBPETokenizer', vocab_size=272),
         encoder_mode='finetune',
         max_length=8), run_lit_decoder),
    'LiTTextDecoder':
    ('mmpretrain',
     dict(
         type='LiTTextDecoder',
         vocab_size=12,
         memory_dims=8,
         drop_rate=0.,
         max_length=8,
         arch=dict(embed_dims=16, num_heads=2, ffn_dims=32,
                   num_layers=1)), run_text_decoder),
    'M3IAttentionPoolHead': ('mmpretrain',
                             dict(
                                 type='M3IAttentionPoolHead',
                                 in_channels=16,
                                 num_classes=3,
                                 num_heads=2), run_pool_head),
    'M3IDecoder': ('mmpretrain',
                   dict(
                       type='M3IDecoder',
                       in_channels=12,
                       embed_dims=16,
                       num_layers=2,
                       num_heads=2,
                       out_channels=10), run_m3i_decoder),
    'M3IMixer': ('mmpretrain', dict(type='M3IMixer', patch_size=4), run_mixer),
    'SigLoss': ('mmseg', dict(type='SigLoss'), run_sig_loss),
}

#: parameters that get no gradient in the tested mode by design
UNUSED = {
    'LegoResNet': {
        'controllers.b':
        'one task per step (GPPF SIMT): the controller of '
        'a task that did not run gets no gradient',
    },
    'LegoSwinTransformer': {
        'controllers.b':
        'one task per step (GPPF SIMT): the controller of '
        'a task that did not run gets no gradient',
    },
}

#: registered components left out here, with the reason
SKIP = {
    'GLIDDepthEstimator':
    'whole model; every parameter\'s gradient is '
    'checked in tests/models/heads/test_glid_depth_head.py'
    '::test_every_parameter_gets_a_gradient_and_loss_keys',
    'GLIDEncoderDecoder':
    'whole model; every parameter\'s gradient is '
    'checked in tests/models/segmentors/test_glid_encoder_decoder.py'
    '::test_every_parameter_gets_a_gradient',
    'GLIDMaskFormer':
    'whole model; every parameter\'s gradient is checked '
    'in tests/models/detectors/test_glid_maskformer.py'
    '::test_instance_loss_and_gradients_on_coco128',
    'GPPFMultiTaskModel':
    'whole model; the task step\'s gradients (every '
    'lego unit, the task\'s controller and head, none for the other task) '
    'are checked in tests/models/algorithms/test_gppf_multi_task_model.py'
    '::test_task_step_uses_its_path_only',
    'M3I':
    'whole model; every trainable parameter\'s gradient (and none '
    'for the momentum encoder) is checked in '
    'tests/models/algorithms/test_m3i.py'
    '::test_every_trainable_parameter_gets_a_gradient',
    'SharedBackboneSlot':
    'weightless placeholder that raises when called '
    '(nothing to differentiate); see test_shared_backbone_slot below',
}


def _registered():
    names = {}
    for scope, registry in MODELS.registries().items():
        for name, cls in registry.module_dict.items():
            if getattr(cls, '__module__', '').startswith('glid_mm.models'):
                names.setdefault(name, scope)
    return names


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for value in out.values():
            yield from _tensors(value)
    elif isinstance(out, (list, tuple)):
        for value in out:
            yield from _tensors(value)


def _scalar(out):
    """A loss dict's ``loss*`` terms summed, or a fixed random projection of
    every float output."""
    if isinstance(out, dict) and any('loss' in k for k in out):
        terms = [t for k, v in out.items() if 'loss' in k for t in _tensors(v)]
        return sum(t.sum() for t in terms)
    g = torch.Generator().manual_seed(123)
    tensors = [
        t for t in _tensors(out) if t.is_floating_point() and t.requires_grad
    ]
    assert tensors, 'the run gave no float output with a graph'
    return sum((t * torch.randn(t.shape, generator=g)).sum() for t in tensors)


def _grad_problem(grad):
    if grad is None:
        return 'no gradient'
    if not torch.isfinite(grad).all():
        return 'non-finite gradient'
    if not grad.abs().sum() > 0:
        return 'all-zero gradient'
    return None


@pytest.mark.parametrize('name', sorted(TINY))
def test_every_parameter_gets_gradient(name):
    scope, cfg, run = TINY[name]
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        module = build_model(cfg)
        assert type(module).__name__ == name
        if isinstance(module, nn.Module):
            module.train()
        leaves = []

        def leaf(t):
            t = t.detach().clone().requires_grad_(True)
            leaves.append(t)
            return t

        loss = _scalar(run(module, leaf))
    assert loss.dim() == 0 and torch.isfinite(loss), loss
    loss.backward()
    params = list(module.named_parameters()) if isinstance(module,
                                                           nn.Module) else []
    trainable = [(n, p) for n, p in params if p.requires_grad]
    unused = UNUSED.get(name, {})
    for pattern in unused:
        assert any(fnmatch.fnmatch(n, pattern) for n, _ in trainable), \
            f'UNUSED pattern {pattern!r} matches no parameter of {name}'
    problems = {}
    for pname, p in trainable:
        if any(fnmatch.fnmatch(pname, pattern) for pattern in unused):
            # documented as unused: it must really get nothing
            assert p.grad is None or not p.grad.abs().sum() > 0, pname
            continue
        problem = _grad_problem(p.grad)
        if problem:
            problems[pname] = problem
    assert not problems, f'{name}: {problems}'
    if not trainable:
        assert leaves, f'{name} has no parameters: mark an input with leaf'
    for i, t in enumerate(leaves):
        problem = _grad_problem(t.grad)
        assert problem is None, f'{name}: input {i}: {problem}'


def test_every_registered_module_is_covered():
    registered = _registered()
    assert len(registered) > 20  # the registries were walked
    missing = sorted(set(registered) - set(TINY) - set(SKIP))
    assert not missing, (
        f'registered glid_mm model components without a gradient check: '
        f'{missing}; add them to TINY (or to SKIP with the reason)')
    assert not set(TINY) & set(SKIP)
    stale = sorted((set(TINY) | set(SKIP) | set(UNUSED)) - set(registered))
    assert not stale, f'not registered (any more): {stale}'
    # the test named in each reason exists
    for name, reason in SKIP.items():
        refs = re.findall(r'(tests/\S+\.py)::(\w+)', reason)
        assert refs or 'see test_' in reason, (name, reason)
        for path, func in refs:
            with open(osp.join(ROOT, path)) as f:
                assert f'def {func}(' in f.read(), (name, path, func)


def test_shared_backbone_slot():
    with DefaultScope.overwrite_default_scope('mmdet'):
        slot = build_model(dict(type='SharedBackboneSlot'))
    assert list(slot.parameters()) == []
    with pytest.raises(RuntimeError, match='SharedBackboneSlot was called'):
        slot(torch.zeros(1, 3, 8, 8))
