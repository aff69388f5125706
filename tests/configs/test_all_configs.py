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
from glid_mm.utils.gppf_task_configs import resolve_task_configs

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
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
    # GPPF task configs named by path: resolved as TaskConfigRunner does
    cfg = resolve_task_configs(Config.fromfile(osp.join(ROOT, path)))
    assert 'model' in cfg, f'{path} defines no model'
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper'):
        assert key in cfg, f'{path} lacks {key}'
    scope = _scope(cfg)
    init_default_scope(scope)
    model = build_model(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    check_param_groups(path, cfg, model)


RUNTIME_HOOKS = ('FiniteLossHook', 'AtomicCheckpointHook')


@pytest.mark.parametrize('path', CONFIGS)
def test_config_has_the_glid_mm_runtime(path):
    """Every config imports glid_mm itself and keeps the runtime of
    configs/_base_/runtimes/ (first-NaN stop, atomic checkpoints), so a
    toolbox's own tools/train.py runs it as ours does."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    assert 'glid_mm' in imports, f'{path}: custom_imports lacks glid_mm'
    hooks = [h.get('type') for h in cfg.get('custom_hooks') or []]
    missing = [h for h in RUNTIME_HOOKS if h not in hooks]
    assert not missing, (f'{path}: custom_hooks {hooks} lacks {missing} '
                         '(inherit configs/_base_/runtimes/ and list them '
                         'again where the config sets custom_hooks)')


def _intended(cfg_paramwise: dict, name: str, module, param, base_lr, base_wd):
    """(lr, weight decay) a parameter should get from the recipe: a part's
    multiplier (``custom_keys`` entry with ``lr_mult``, e.g. ``backbone``)
    covers every parameter of the part unless a longer key sets its own
    ``lr_mult``; no weight decay where any matching key says
    ``decay_mult=0`` or the parameter's kind is exempted
    (``norm_decay_mult`` / ``bias_decay_mult`` / ``flat_decay_mult`` 0)."""
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _BatchNorm
    norms = (_BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
    keys = cfg_paramwise.get('custom_keys', {}) or {}
    matching = sorted(
        sorted(k for k in keys if k in name), key=len, reverse=True)
    lr_mult = next(
        (keys[k]['lr_mult'] for k in matching if 'lr_mult' in keys[k]), 1.)
    decay = next((keys[k]['decay_mult']
                  for k in matching if 'decay_mult' in keys[k]), 1.)
    is_norm = isinstance(module, norms)
    leaf = name.rsplit('.', 1)[-1]
    if is_norm and cfg_paramwise.get('norm_decay_mult') == 0:
        decay = 0.
    if leaf == 'bias' and not is_norm and \
            cfg_paramwise.get('bias_decay_mult') == 0:
        decay = 0.
    if param.ndim == 1 and cfg_paramwise.get('flat_decay_mult') == 0:
        decay = 0.
    if any(keys[k].get('decay_mult', 1.) == 0 for k in matching):
        decay = 0.
    return base_lr * lr_mult, base_wd * decay


def check_param_groups(path, cfg, model):
    """The built optimizer gives every trainable parameter the learning
    rate and weight decay of the recipe (mmengine's default constructor
    applies only the longest matching key: a backbone position table
    trained at 10x the backbone lr, backbone norms with decay)."""
    from mmengine.optim import build_optim_wrapper
    ow_cfg = cfg.optim_wrapper
    if 'optimizer' not in ow_cfg:  # e.g. per-task wrappers
        return
    ow_cfg = ow_cfg.copy()
    if ow_cfg.get('type') == 'AmpOptimWrapper':  # needs a GPU; same groups
        ow_cfg.type = 'OptimWrapper'
        ow_cfg.pop('loss_scale', None)
        ow_cfg.pop('dtype', None)
    optimizer = build_optim_wrapper(model, ow_cfg).optimizer
    base_lr = ow_cfg.optimizer.get('lr')
    base_wd = ow_cfg.optimizer.get('weight_decay', 0.) or 0.
    paramwise = ow_cfg.get('paramwise_cfg', {}) or {}
    layer_decay = 'layer_decay_rate' in paramwise
    group_of = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            group_of[id(p)] = group
    wrong = []
    for mod_name, module in model.named_modules():
        for leaf, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            name = f'{mod_name}.{leaf}' if mod_name else leaf
            group = group_of.get(id(param))
            assert group is not None, f'{path}: {name} not in the optimizer'
            lr, wd = _intended(paramwise, name, module, param, base_lr,
                               base_wd)
            got_wd = group.get('weight_decay', base_wd)
            if abs(got_wd - wd) > 1e-12 * max(1., wd):
                wrong.append(f'{name}: weight_decay {got_wd} (want {wd})')
            if not layer_decay and abs(group['lr'] - lr) > 1e-12 * lr:
                wrong.append(f'{name}: lr {group["lr"]} (want {lr})')
    assert not wrong, f'{path}:\n' + '\n'.join(wrong[:20]) + \
        f'\n({len(wrong)} in all)'
