"""SharedBackboneSlot: the weightless stand-in for a GPPF task model's
backbone.

tests/models/test_every_module_gets_gradient.py::test_shared_backbone_slot
covers a bare slot built under mmdet (no parameters, raises when called);
here: the scopes it is registered in, stock task models of mmdet, mmseg and
mmpretrain built around it (what GPPFMultiTaskModel relies on), and their
forward failing with the slot's explanation rather than somewhere inside a
head.
"""
import importlib

import pytest
import torch
from mmengine.registry import DefaultScope

import glid_mm  # noqa: F401
from glid_mm.models.backbones import SharedBackboneSlot
from glid_mm.registry import available, build_model

CALLED = 'SharedBackboneSlot was called: .*must run with the shared backbone'

# tiny stock task models whose backbone is the slot (4-channel features)
TASKS = dict(
    mmpretrain=dict(
        type='ImageClassifier',
        backbone=dict(type='SharedBackboneSlot'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=4)),
    mmseg=dict(
        type='EncoderDecoder',
        backbone=dict(type='SharedBackboneSlot'),
        decode_head=dict(
            type='FCNHead',
            in_channels=4,
            channels=4,
            num_convs=1,
            num_classes=2,
            concat_input=False)),
    mmdet=dict(
        type='RetinaNet',
        backbone=dict(type='SharedBackboneSlot'),
        neck=dict(
            type='ChannelMapper',
            in_channels=[4],
            out_channels=4,
            kernel_size=1,
            num_outs=1),
        bbox_head=dict(
            type='RetinaHead',
            num_classes=2,
            in_channels=4,
            feat_channels=4,
            stacked_convs=1,
            anchor_generator=dict(
                type='AnchorGenerator',
                octave_base_scale=4,
                scales_per_octave=1,
                ratios=[1.0],
                strides=[8]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'))),
)


def _registry(scope):
    return importlib.import_module(f'{scope}.registry').MODELS


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_registered_where_gppf_task_models_are_built(scope):
    if not available(scope):
        pytest.skip(f'{scope} is not installed')
    assert _registry(scope).get('SharedBackboneSlot') is SharedBackboneSlot
    with DefaultScope.overwrite_default_scope(scope):
        slot = build_model(dict(type='SharedBackboneSlot'))
    assert isinstance(slot, SharedBackboneSlot)


def test_registered_for_mmpose():
    """A task model of any toolbox can take the slot (a pose task of a
    multi-task model included; tests/test_registry.py::WHERE)."""
    if not available('mmpose'):
        pytest.skip('mmpose is not installed')
    assert 'SharedBackboneSlot' in _registry('mmpose').module_dict


def test_weightless_and_stateless():
    slot = SharedBackboneSlot()
    assert list(slot.parameters()) == [] and list(slot.buffers()) == []
    assert slot.state_dict() == {}
    slot.load_state_dict({})  # strict: nothing missing, nothing unexpected
    assert list(slot.children()) == []


@pytest.mark.parametrize('args, kwargs', [
    ((), {}),
    ((torch.zeros(1, 3, 8, 8), ), {}),
    ((), dict(x=torch.zeros(1, 3, 8, 8))),
])
def test_any_call_raises(args, kwargs):
    slot = SharedBackboneSlot()
    for mode in (slot.train, slot.eval):
        mode()
        with pytest.raises(RuntimeError, match=CALLED):
            slot(*args, **kwargs)


@pytest.mark.parametrize('scope', sorted(TASKS))
def test_stock_task_model_builds_around_the_slot(scope):
    if not available(scope):
        pytest.skip(f'{scope} is not installed')
    with DefaultScope.overwrite_default_scope(scope):
        model = build_model(TASKS[scope])
    assert isinstance(model.backbone, SharedBackboneSlot)
    # the slot adds nothing to the task model's weights
    keys = list(model.state_dict())
    assert keys and not any(k.startswith('backbone.') for k in keys)
    # running it without the shared backbone in place names the cause
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(RuntimeError, match=CALLED):
        model.extract_feat(x)
    with pytest.raises(RuntimeError, match=CALLED):
        model(x, mode='tensor')
