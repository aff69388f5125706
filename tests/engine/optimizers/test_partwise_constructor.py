"""PartwiseOptimWrapperConstructor: a part's lr multiplier and the kind
rules (no decay on norms) combine, where mmengine's default constructor
applies only the longest matching custom key."""
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

import glid_mm  # noqa: F401


class Tiny(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.backbone.relative_position_bias_table = nn.Parameter(
            nn.init.zeros_(nn.Parameter(nn.Linear(2, 2).weight)))
        self.head = nn.Linear(4, 2)
        self.query_embed = nn.Embedding(3, 4)


def groups(constructor):
    model = Tiny()
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        paramwise_cfg=dict(
            norm_decay_mult=0.,
            bias_decay_mult=0.,
            custom_keys={
                'backbone': dict(lr_mult=0.1),
                'relative_position_bias_table': dict(decay_mult=0.),
                'query_embed': dict(decay_mult=0.),
            }))
    if constructor:
        cfg['constructor'] = constructor
    optimizer = build_optim_wrapper(model, cfg).optimizer
    out = {}
    for name, p in model.named_parameters():
        group = next(
            g for g in optimizer.param_groups
            if any(q is p for q in g['params']))
        out[name] = (group['lr'], group['weight_decay'])
    return out


def test_part_multiplier_and_kind_rules_combine():
    got = groups('PartwiseOptimWrapperConstructor')
    assert got == {
        'backbone.relative_position_bias_table': (1e-5, 0.),
        'backbone.0.weight': (1e-5, 0.05),
        'backbone.0.bias': (1e-5, 0.),  # bias_decay_mult
        'backbone.1.weight': (1e-5, 0.),  # norm_decay_mult
        'backbone.1.bias': (1e-5, 0.),
        'head.weight': (1e-4, 0.05),
        'head.bias': (1e-4, 0.),
        'query_embed.weight': (1e-4, 0.),
    }


def test_mmengine_default_applies_only_the_longest_key():
    """What the constructor fixes (and why the configs name it)."""
    got = groups(None)
    assert got['backbone.relative_position_bias_table'] == (1e-4, 0.)
    assert got['backbone.1.weight'] == (1e-5, 0.05)
