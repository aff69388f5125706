"""Extracting one lego path as a plain ResNet state dict (Sec. 3.3)."""
import os.path as osp
import runpy

import pytest
import torch
from mmdet.models.backbones import ResNet

import glid_mm  # noqa: F401
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
from glid_mm.models.converters.gppf_path_export import (
    extract_static_backbone, lego_layer_names, lego_to_resnet_state_dict,
    task_path)

SMALL = dict(depth=50, stem_channels=8, base_channels=4)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    lego = LegoResNet(task_names=('det', 'cls'), lego_stem=False, **SMALL)
    with torch.no_grad():
        lego.controllers['cls'][:, 1] = 1.0
    state = {f'backbone.{k}': v for k, v in lego.state_dict().items()}
    state['tasks.cls.head.fc.weight'] = torch.zeros(2, 2)
    path = tmp_path_factory.mktemp('gppf') / 'gppf.pth'
    torch.save(dict(state_dict=state, meta=dict()), path)
    return str(path), lego


def test_layer_order_and_task_path(checkpoint):
    file, lego = checkpoint
    state = torch.load(file, weights_only=True)['state_dict']
    names = lego_layer_names(state, prefix='backbone.')
    assert names == lego.layer_names  # no 'stem': a shared, plain stem
    assert names[:4] == ['layer1_0', 'layer1_1', 'layer1_2', 'layer2_0']
    assert task_path(state, 'cls', prefix='backbone.') == [1] * 16


def test_extract_from_file_loads_into_mmdet_resnet(checkpoint, tmp_path):
    file, lego = checkpoint
    out = tmp_path / 'static.pth'
    static = extract_static_backbone(file, 'cls', out_file=str(out))
    saved = torch.load(out, weights_only=True)
    assert saved['meta'] == dict(gppf_path=[1] * 16, gppf_task='cls')
    resnet = ResNet(**SMALL)
    missing, unexpected = resnet.load_state_dict(
        saved['state_dict'], strict=False)
    assert missing == [] and unexpected == []
    torch.testing.assert_close(static['conv1.weight'], lego.stem.conv1.weight)
    torch.testing.assert_close(static['layer3.5.conv2.weight'],
                               lego.lego['layer3_5'].units[1].conv2.weight)


def test_tool_main(checkpoint, tmp_path, project_root):
    """The tool in-process (its subprocess run is tested on a real
    checkpoint in tests/engine/loops/test_gppf_simt_train_loop.py)."""
    file, _ = checkpoint
    main = runpy.run_path(
        osp.join(project_root, 'tools/gppf_extract_backbone.py'))['main']
    out = tmp_path / 'p.pth'
    main([file, str(out), '--path', ','.join(['0'] * 16)])
    assert torch.load(out, weights_only=True)['meta']['gppf_path'] == [0] * 16
    with pytest.raises(ValueError, match='comma-separated integers'):
        main([file, str(out), '--path', '0,x'])
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        main(['missing.pth', str(out), '--task', 'cls'])


def test_errors(checkpoint):
    file, lego = checkpoint
    state = torch.load(file, weights_only=True)['state_dict']
    with pytest.raises(KeyError, match="no controller for task 'seg'"):
        task_path(state, 'seg', prefix='backbone.')
    with pytest.raises(
            ValueError, match='has 2 entries but the backbone '
            'has 16'):
        lego_to_resnet_state_dict(state, [0, 1], prefix='backbone.')
    with pytest.raises(ValueError, match="'layer1_0' has no unit 2"):
        lego_to_resnet_state_dict(state, [2] * 16, prefix='backbone.')
    with pytest.raises(KeyError, match="prefix 'neck.'"):
        lego_to_resnet_state_dict(state, [0] * 16, prefix='neck.')
    with pytest.raises(KeyError, match='no lego layer keys'):
        lego_to_resnet_state_dict({'conv1.weight': torch.zeros(1)}, [0])
