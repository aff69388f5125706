"""Every config under configs/ parses and its model builds (in its scope).

Paper-scale models (Swin-B/L, ViT-B, ResNet-50 legos) are built on the CPU
with their random init (about 1 s each, 40 s in all here); the training
behaviour of each model family is covered by its own tests on the nano /
tiny configs.
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


def _scope(cfg) -> str:
    scope = cfg.get('default_scope')
    if scope:
        return scope
    model_type = str(cfg.model.get('type', ''))
    if '.' in model_type:
        return model_type.split('.')[0]
    return 'mmengine'


def test_configs_found():
    assert len(CONFIGS) > 40, CONFIGS
    for family in ('glid', 'gppf', 'm3i', 'lit_decoder', 'stack'):
        assert any(c.startswith(f'configs/{family}/') for c in CONFIGS)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses_and_model_builds(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    assert 'model' in cfg, f'{path} defines no model'
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper'):
        assert key in cfg, f'{path} lacks {key}'
    scope = _scope(cfg)
    init_default_scope(scope)
    model = build_model(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
