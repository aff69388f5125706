"""LegoResNet takes what the toolboxes pass to a backbone: mmseg's
``pretrained`` (a plain ResNet copied into every unit) and
``frozen_stages``."""
import pytest
import torch
from mmdet.models.backbones import ResNet

import glid_mm  # noqa: F401
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet


def _lego(**kwargs):
    return LegoResNet(
        task_names=('seg', ),
        depth=18,
        num_units=2,
        stem_channels=64,
        base_channels=64,
        **kwargs)


def test_plain_resnet_weights_go_into_every_unit(tmp_path):
    torch.manual_seed(0)
    plain = ResNet(depth=18)
    path = str(tmp_path / 'r18.pth')
    # mmdet / mmseg checkpoints keep the backbone under 'backbone.'
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in plain.state_dict().items()
        }), path)
    lego = _lego(pretrained=path)
    lego.init_weights()
    own = lego.state_dict()
    for k in (0, 1):
        torch.testing.assert_close(own[f'lego.stem.units.{k}.conv1.weight'],
                                   plain.conv1.weight)
        torch.testing.assert_close(
            own[f'lego.layer3_1.units.{k}.conv2.weight'],
            plain.layer3[1].conv2.weight)
    # the same features as the plain ResNet on any path (eval: argmax path)
    lego.eval(), plain.eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(lego(x)[-1], plain(x)[-1])


def test_a_checkpoint_that_does_not_fit_is_refused(tmp_path):
    deep = ResNet(depth=18, deep_stem=True)  # resnet50_v1c-style stem
    path = str(tmp_path / 'v1c.pth')
    torch.save(deep.state_dict(), path)
    lego = _lego(pretrained=path)
    with pytest.raises(ValueError, match='7x7 stem'):
        lego.init_weights()


def test_frozen_stages():
    lego = _lego(frozen_stages=1)
    frozen = {n for n, p in lego.named_parameters() if not p.requires_grad}
    assert any(n.startswith('lego.stem.') for n in frozen)
    assert any(n.startswith('lego.layer1_') for n in frozen)
    assert not any(n.startswith('lego.layer2_') for n in frozen)
    assert not any(n.startswith('controllers.') for n in frozen)
    lego.train()
    assert not lego.lego['layer1_0'].training
    assert lego.lego['layer2_0'].training
    with pytest.raises(ValueError, match='frozen_stages'):
        _lego(frozen_stages=5)


def test_swin_backbones_and_mmseg_pretrained(tmp_path):
    """mmseg passes ``model.pretrained`` to the backbone: the GLID Swin
    loads it (a Swin checkpoint with the same keys), the lego Swin refuses
    it saying what to write instead."""
    from mmengine.registry import DefaultScope

    from glid_mm.models.backbones import GLIDSwinTransformer
    from glid_mm.models.backbones.gppf_lego_swin import LegoSwinTransformer
    cfg = dict(
        arch=dict(embed_dims=16, depths=[1, 1], num_heads=[1, 1]),
        img_size=32,
        stage_cfgs=dict(block_cfgs=dict(window_size=2)),
        out_indices=(0, 1))
    torch.manual_seed(0)
    source = GLIDSwinTransformer(**cfg)
    path = str(tmp_path / 'swin.pth')
    torch.save(dict(state_dict=source.state_dict()), path)
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(1)
        swin = GLIDSwinTransformer(**cfg, pretrained=path)
        swin.init_weights()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(swin.state_dict()[key], value, msg=key)
    with pytest.raises(ValueError, match='not both'):
        GLIDSwinTransformer(
            **cfg,
            pretrained=path,
            init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match='load_from'):
        LegoSwinTransformer(task_names=('seg', ), pretrained=path)
