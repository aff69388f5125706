import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from glid_mm.models.converters.m3i_to_backbone import m3i_to_backbone
from glid_mm.utils.load_check import (CheckpointMismatchError, by_part,
                                      load_and_report)

TOOL = osp.join('tools', 'model_converters', 'm3i_to_backbone.py')
TINY_ARCH = dict(
    embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64)


@pytest.fixture
def tiny_state(mmpretrain_scope, tiny_m3i_cfg):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(tiny_m3i_cfg())
    model.init_weights()
    with torch.no_grad():  # make the momentum encoder differ
        for p in model.target_generator.parameters():
            p.add_(1.)
    return model.state_dict()


def test_keeps_the_encoder_only(tiny_state):
    state, report = m3i_to_backbone(dict(state_dict=tiny_state))
    expected = {k for k in tiny_state if k.startswith('backbone.')}
    assert set(state) == expected == set(report['kept'])
    for k in expected:
        assert torch.equal(state[k], tiny_state[k])
    assert set(report['dropped']) == {'target_generator', 'neck', 'head'}
    assert report['dropped']['neck'] == sum(
        k.startswith('neck.') for k in tiny_state)


def test_momentum_source(tiny_state):
    state, report = m3i_to_backbone(tiny_state, source='momentum')
    assert set(state) == {k for k in tiny_state if k.startswith('backbone.')}
    key = 'backbone.layers.0.attn.qkv.weight'
    assert torch.equal(state[key],
                       tiny_state['target_generator.module.' + key[9:]])
    assert not torch.equal(state[key], tiny_state[key])
    assert report['dropped']['backbone'] > 0


def test_bad_arguments(tiny_state):
    with pytest.raises(ValueError, match="source must be one of"):
        m3i_to_backbone(tiny_state, source='ema')
    with pytest.raises(KeyError, match='M3I checkpoint'):
        m3i_to_backbone({'model.weight': torch.zeros(1)})
    with pytest.raises(TypeError, match='path or a dict'):
        m3i_to_backbone([1, 2])


def test_load_report_into_a_stock_classifier(tiny_state):
    from mmpretrain.registry import MODELS
    state, _ = m3i_to_backbone(tiny_state)
    classifier = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(
                type='VisionTransformer',
                arch=TINY_ARCH,
                img_size=32,
                patch_size=16),
            head=dict(
                type='VisionTransformerClsHead', num_classes=2,
                in_channels=32)))
    report = load_and_report(classifier, state)
    assert report['unexpected'] == [] and report['mismatch'] == []
    assert set(by_part(report['missing'])) <= {'head'}
    assert sorted(report['loaded']) == sorted(state)
    assert torch.equal(classifier.backbone.cls_token,
                       state['backbone.cls_token'])
    wide = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(
                type='VisionTransformer',
                arch='deit-tiny',
                img_size=32,
                patch_size=16)))
    before = wide.backbone.cls_token.clone()
    with pytest.raises(CheckpointMismatchError, match='shape mismatch'):
        load_and_report(wide, state)
    assert torch.equal(wide.backbone.cls_token, before)  # nothing loaded


def _run_tool(project_root, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, TOOL, *args],
                          cwd=project_root,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.mark.slow
def test_tool_converts_and_checks_a_stock_config(tiny_state, tmp_path,
                                                 project_root):
    src, dst = tmp_path / 'm3i.pth', tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=tiny_state, meta=dict(iter=0)), src)
    # the stock mmpretrain ViT classifier config, at the tiny size
    cfg = tmp_path / 'vit_tiny_cls.py'
    cfg.write_text(
        "_base_ = 'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k"
        ".py'\n"
        f'model = dict(backbone=dict(arch=dict(_delete_=True, '
        f'**{TINY_ARCH!r}), img_size=32), '
        'head=dict(in_channels=32, num_classes=2))\n')
    proc = _run_tool(project_root, str(src), str(dst), '--check-config',
                     str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index('{'):])
    n_backbone = sum(k.startswith('backbone.') for k in tiny_state)
    assert report['kept'] == report['loaded'] == n_backbone
    assert report['missing_backbone'] == [] and report['unexpected'] == []
    assert report['scope'] == 'mmpretrain'
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(saved['state_dict']) == {
        k
        for k in tiny_state if k.startswith('backbone.')
    }
