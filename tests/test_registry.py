"""The registry decision of glid_mm/registry.py, tested once for all."""
import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import MODELS, TOOLBOXES, build_model

NAME = 'GlidMMRegistryProbe'


class _Probe(nn.Module):
    """Builds a nested loss by plain name, as our components do."""

    def __init__(self, loss=dict(type='CrossEntropyLoss')):
        super().__init__()
        self.loss = build_model(loss)


@pytest.fixture(scope='module')
def probe():
    MODELS.register_module(name=NAME)(_Probe)
    yield _Probe
    for registry in MODELS.registries().values():
        registry._module_dict.pop(NAME, None)


def _loss_module_root(scope):
    return {
        'mmdet': 'mmdet.',
        'mmseg': 'mmseg.',
        'mmpose': 'mmpose.',
        'mmpretrain': 'mmpretrain.'
    }[scope]


@pytest.mark.parametrize('scope', TOOLBOXES)
def test_plain_and_scoped_names_resolve(probe, scope):
    registry = MODELS.registries()[scope]
    assert registry.get(NAME) is probe
    assert registry.get(f'{scope}.{NAME}') is probe


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_nested_build_resolves_in_current_scope(probe, scope):
    """A nested ``type`` resolves in the toolbox whose config builds us."""
    init_default_scope(scope)
    try:
        model = MODELS.registries()[scope].build(dict(type=NAME))
    finally:
        DefaultScope._instance_dict.pop(scope, None)
    assert type(model.loss).__module__.startswith(_loss_module_root(scope))


def test_custom_imports_in_stock_config(probe, tmp_path):
    """A stock mmdet config + custom_imports builds glid_mm components."""
    cfg_file = tmp_path / 'stock_plus_glid.py'
    cfg_file.write_text(
        "_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['glid_mm'], "
        'allow_failed_imports=False)\n')
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.type == 'RetinaNet'
    assert cfg.default_scope == 'mmdet'
    from mmdet.registry import MODELS as MMDET_MODELS
    init_default_scope('mmdet')
    assert isinstance(MMDET_MODELS.build(dict(type=f'mmdet.{NAME}')), probe)
    assert isinstance(MMDET_MODELS.build(dict(type=NAME)), probe)


def test_unknown_scope_is_an_error():
    with pytest.raises(ValueError, match="unknown toolbox scope.*'mmfoo'"):
        MODELS.registries(['mmdet', 'mmfoo'])

