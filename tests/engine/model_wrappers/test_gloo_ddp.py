"""CPU data parallelism: SyncBN made gloo-capable, and the paper-scale
GLID fine-tuning configs (2 images per GPU) normalise the Bi-FPN with
SyncBN."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

import glid_mm  # noqa: F401
from glid_mm.engine import sync_bn_to_gloo
from glid_mm.models.layers.gppf_cross_task_sync_bn import CrossTaskSyncBN


def test_sync_bn_becomes_cross_task_sync_bn_with_its_state():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4, momentum=0.2),
        nn.Sequential(nn.SyncBatchNorm(4)))
    with torch.no_grad():
        model[1].weight.uniform_()
        model[1].running_mean.uniform_()
    model[1].bias.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    converted = sync_bn_to_gloo(model)
    assert isinstance(converted[1], CrossTaskSyncBN)
    assert isinstance(converted[2][0], CrossTaskSyncBN)
    assert converted[1].momentum == 0.2
    assert not converted[1].bias.requires_grad
    for key, value in converted.state_dict().items():
        torch.testing.assert_close(value, state[key])
    # one process: plain BatchNorm arithmetic
    x = torch.randn(2, 3, 5, 5)
    ref = nn.BatchNorm2d(4, momentum=0.2)
    ref.load_state_dict(converted[1].state_dict())
    feat = converted[0](x)
    torch.testing.assert_close(converted[1](feat), ref(feat))


@pytest.mark.parametrize('path', [
    'configs/glid/glid-det_swin-b_8xb2-50e_coco.py',
    'configs/glid/glid-depth_swin-b_8xb2-38.4k_nyu-416x544.py',
])
def test_paper_scale_finetuning_bifpn_uses_sync_bn(project_root, path):
    cfg = Config.fromfile(osp.join(project_root, path))
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.model.neck.norm_cfg.type == 'SyncBN'
