"""GLID pre-training (Sec. 3.1, eq. 1-2) on the nano config and real images.

The loss-drop test trains the nano model through the config's own data
pipeline on 16 bundled hymenoptera images; about 40 s on an idle CPU core
(issue budget: under 2 minutes).
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

NANO = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'
NANO_MASKTOKEN = \
    'configs/glid/glid-masktoken_swin-nano_1xb16-300i_bundled-128px.py'


@pytest.fixture
def cfg(project_root):
    cfg = Config.fromfile(osp.join(project_root, NANO))
    init_default_scope('mmpretrain')
    return cfg


def _images(cfg, data_root, n):
    """``n`` hymenoptera train images through the config's pipeline."""
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(
        dict(
            type='CustomDataset',
            data_root=osp.join(data_root, 'hymenoptera'),
            data_prefix='train',
            with_label=False,
            indices=n,
            pipeline=copy.deepcopy(cfg.train_pipeline)))
    return dataset


def _masked_batch(B=2, size=128, p=32, n_masked=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(B, 3, size, size, generator=g)
    mask = torch.zeros(B, (size // p)**2, dtype=torch.bool)
    for b in range(B):
        mask[b, torch.randperm(mask.shape[1], generator=g)[:n_masked]] = True
    return inputs, mask.view(B, size // p, size // p)


def test_one_query_per_masked_patch_and_cls_out_of_the_loss(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    inputs, mask = _masked_batch()
    queries, idx = model.mask_queries(mask)
    assert queries.shape == (2, 1 + 12, 64)  # [CLS, M_1 .. M_N]
    pred, idx, out = model._encode_decode(inputs, mask)
    assert out['query_states'].shape == (3, 2, 13, 64)
    assert pred.shape == (2, 12, 32 * 32 * 3)  # no row for [CLS]
    # [CLS] is left out of the loss but receives gradient through the
    # mask queries' self-attention (Sec. 3.1)
    loss = model.head.loss(pred, inputs, idx)
    loss.backward()
    cls_grad = model.decoder.queries.cls_token.grad
    assert cls_grad is not None and cls_grad.abs().sum() > 0
    assert model.decoder.queries.mask_token.grad.abs().sum() > 0
    # the visible-token encoder has no mask token; the pyramid's masked
    # positions are learnt per level
    assert not hasattr(model.backbone, 'mask_token')
    assert all(t.grad.abs().sum() > 0 for t in model.pyramid_mask_tokens)


def test_mask_token_ablation_config(project_root):
    cfg = Config.fromfile(osp.join(project_root, NANO_MASKTOKEN))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = build_model(cfg.model)
    assert model.backbone.mask_mode == 'mask_token'
    assert not hasattr(model, 'pyramid_mask_tokens')
    inputs, mask = _masked_batch()
    pred, idx, _ = model._encode_decode(inputs, mask)
    model.head.loss(pred, inputs, idx).backward()
    assert model.backbone.mask_token.grad.abs().sum() > 0


@pytest.mark.parametrize('path', [NANO, NANO_MASKTOKEN])
def test_no_pixel_of_a_masked_patch_reaches_the_model(project_root, path):
    """Changing the pixels of masked patches changes neither the
    predictions nor any gradient of a loss on them (the reconstruction
    target, which reads them by definition, is left out)."""
    cfg = Config.fromfile(osp.join(project_root, path))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    inputs, mask = _masked_batch()
    pixel_mask = mask.repeat_interleave(32, 1).repeat_interleave(32, 2)
    noisy = inputs.clone()
    noisy[pixel_mask[:, None].expand_as(inputs)] = torch.randn(
        int(pixel_mask.sum()) * 3) * 10
    weight = None
    results = []
    for x in (inputs, noisy):
        model.zero_grad()
        pred, _, out = model._encode_decode(x, mask)
        if weight is None:
            weight = torch.randn_like(pred)
        (pred * weight).sum().backward()
        results.append((pred.detach(), {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        }))
    (pred_a, grads_a), (pred_b, grads_b) = results
    assert torch.equal(pred_a, pred_b)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for name in grads_a:
        assert torch.equal(grads_a[name], grads_b[name]), name


def test_loss_is_mse_on_masked_patches_only(cfg):
    """Eq. 2: changing visible pixels of the target leaves the loss as it
    is once the prediction is fixed; changing a masked patch changes it."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    inputs, mask = _masked_batch()
    with torch.no_grad():
        pred, idx, _ = model._encode_decode(inputs, mask)
        base = model.head.loss(pred, inputs, idx)
        pixel_mask = mask.repeat_interleave(32, 1).repeat_interleave(32, 2)
        visible = ~pixel_mask[:, None].expand_as(inputs)
        moved = inputs.clone()
        moved[visible] += 3.0
        assert torch.allclose(model.head.loss(pred, moved, idx), base)
        moved = inputs.clone()
        moved[~visible] += 3.0
        assert not torch.allclose(model.head.loss(pred, moved, idx), base)
        # hand-computed MSE over the masked patches
        from glid_mm.models.heads.glid_pretrain_head import patchify
        patches = patchify(inputs, 32)
        tgt = torch.gather(patches, 1,
                           idx[..., None].expand(-1, -1, patches.shape[-1]))
        torch.testing.assert_close(base, ((pred - tgt)**2).mean())


def test_reconstruct_keeps_visible_pixels(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    inputs, mask = _masked_batch()
    out = model.reconstruct(inputs, mask, return_attn=True)
    assert out['pred'].shape == inputs.shape
    visible = out['pixel_mask'] == 0
    torch.testing.assert_close(out['pred'][visible.expand_as(inputs)],
                               inputs[visible.expand_as(inputs)])
    assert len(out['attn_maps']) == 3


def test_unequal_mask_counts_are_refused(cfg):
    model = build_model(cfg.model)
    inputs, mask = _masked_batch()
    mask[1, 0, 0] = ~mask[1, 0, 0]
    with pytest.raises(ValueError, match='same'):
        model.mask_queries(mask)
    with pytest.raises(ValueError, match='mask must be'):
        model._encode_decode(inputs, mask[:, :2])


@pytest.mark.parametrize('strategy', ['random', 'grid', 'block'])
@pytest.mark.parametrize('ratio', [0.5, 0.6, 0.75])
def test_mask_generator_strategies_and_ratios(strategy, ratio):
    """Table 7: every strategy masks exactly round(ratio * h * w) patches,
    on every draw."""
    from mmpretrain.registry import TRANSFORMS
    gen = TRANSFORMS.build(
        dict(
            type='GLIDMaskGenerator',
            mask_patch_size=32,
            mask_ratio=ratio,
            strategy=strategy))
    np.random.seed(0)
    masks = [
        gen.transform(dict(img=np.zeros((192, 192, 3), np.uint8)))['mask']
        for _ in range(5)
    ]
    for m in masks:
        m = np.asarray(m)
        assert m.shape == (6, 6)
        assert int(m.sum()) == round(ratio * 36)
    if strategy != 'grid':
        assert any((a != b).any() for a, b in zip(masks, masks[1:]))


def test_block_strategy_masks_contiguous_blocks():
    from mmpretrain.registry import TRANSFORMS
    gen = TRANSFORMS.build(
        dict(
            type='GLIDMaskGenerator',
            mask_patch_size=16,
            mask_ratio=0.5,
            strategy='block'))
    np.random.seed(1)
    m = np.asarray(gen.generate(14, 14)).astype(bool)
    # block masks have far fewer masked/visible edges than random ones
    edges = (m[1:] != m[:-1]).sum() + (m[:, 1:] != m[:, :-1]).sum()
    rand = np.zeros(196, bool)
    rand[np.random.permutation(196)[:98]] = True
    rand = rand.reshape(14, 14)
    rand_edges = (rand[1:] != rand[:-1]).sum() + (rand[:, 1:]
                                                  != rand[:, :-1]).sum()
    assert edges < 0.6 * rand_edges


def test_tiny_pretraining_lowers_loss_by_30_percent(cfg, data_root):
    """Issue 3: the masked-patch MSE falls by >= 30 % in 160 iterations
    (fixed seed, real images). Measured on one fixed batch of the 16
    training images with fixed masks, before and after training: with
    32 px units (4 visible of 16) the per-batch training loss swings by
    +-20 % between draws, more than a first-10 / last-10 average smooths."""
    from mmengine.runner import set_random_seed
    set_random_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    model.train()
    dataset = _images(cfg, data_root, 16)
    np.random.seed(123)
    fixed = model.data_preprocessor(
        default_collate([dataset[i] for i in range(16)]), True)

    def fixed_loss():
        with torch.no_grad():
            return float(
                model.loss(fixed['inputs'], fixed['data_samples'])['loss'])

    before = fixed_loss()
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    order = np.random.RandomState(0)
    for it in range(160):
        idx = order.choice(len(dataset), 8, replace=False)
        batch = default_collate([dataset[int(i)] for i in idx])
        model.train_step(batch, optim)
    after = fixed_loss()
    assert after <= 0.7 * before, (before, after)
