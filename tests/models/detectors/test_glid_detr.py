"""GLIDDETR + GLIDDETRHead (mmdet) on real COCO128 images.

Nano model at 160x120 on the CPU; about 30 s on an idle core.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

NANO = 'configs/glid/glid-det_swin-nano_1xb8-2k_coco128-320x240.py'
SWIN_B = 'configs/glid/glid-det_swin-b_8xb2-50e_coco.py'
PRETRAIN = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'


@pytest.fixture
def cfg(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, NANO))
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = osp.join(data_root, 'coco128') + '/'
    cfg.val_dataloader.dataset.pipeline[1].scale = (160, 120)  # CPU size
    cfg.model.backbone.drop_path_rate = 0.0
    init_default_scope('mmdet')
    return cfg


def _batch(cfg, indices):
    """Real images and boxes through the test pipeline (annotations loaded
    before the resize, as in training; no random transforms)."""
    from mmdet.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    load, resize, annotations, pack = dataset_cfg.pipeline
    dataset_cfg.pipeline = [load, annotations, resize, pack]
    dataset = DATASETS.build(dataset_cfg)
    return pseudo_collate([dataset[i] for i in indices])


def test_query_counts_train_and_eval(cfg):
    model = build_model(cfg.model)
    assert model.decoder.queries.num_queries == 1800  # Sec. 4, H-DETR
    assert model.bbox_head.num_queries == 300
    data = model.data_preprocessor(_batch(cfg, [0, 1]), training=True)
    feats = model.extract_feat(data['inputs'])
    model.train()
    out = model.forward_transformer(feats, data['data_samples'])
    assert out['hidden_states'].shape == (3, 2, 1800, 64)
    model.eval()
    with torch.no_grad():
        out = model.forward_transformer(feats, data['data_samples'])
    assert out['hidden_states'].shape == (3, 2, 300, 64)
    bad = copy.deepcopy(cfg.model)
    bad.decoder.num_queries = 300
    with pytest.raises(ValueError, match='num_queries'):
        build_model(bad)


def test_one2one_group_does_not_see_one2many_group(cfg):
    """H-DETR's self-attention mask: changing the one-to-many queries
    leaves the one-to-one states unchanged (and vice versa they change)."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.train()
    data = model.data_preprocessor(_batch(cfg, [0]), training=True)
    feats = model.extract_feat(data['inputs'])
    with torch.no_grad():
        embed = model.decoder.queries.query_embed
        embed.normal_()
        before = model.forward_transformer(feats, data['data_samples'])
        embed[300:] += 1.0
        after = model.forward_transformer(feats, data['data_samples'])
    h0, h1 = before['hidden_states'], after['hidden_states']
    torch.testing.assert_close(h0[:, :, :300], h1[:, :, :300])
    assert not torch.allclose(h0[:, :, 300:], h1[:, :, 300:])


def test_loss_terms_every_block_and_gradients(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.train()
    data = model.data_preprocessor(_batch(cfg, [0, 1]), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    for term in ('loss_cls', 'loss_bbox', 'loss_iou'):
        assert term in losses and f'{term}_one2many' in losses
        for i in range(2):  # deep supervision: blocks 0, 1 of 3
            assert f'd{i}.{term}' in losses
            assert f'd{i}.{term}_one2many' in losses
    assert len(losses) == 2 * 3 * 3
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name in ('decoder.queries.query_embed', 'bbox_head.fc_cls.weight',
                 'bbox_head.fc_reg.weight',
                 'decoder.layers.0.cross_attn.attn.in_proj_weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_one2many_matches_repeated_ground_truth(cfg):
    """The one-to-many loss equals DETR's loss against the ground truth
    repeated k times (H-DETR), computed here by hand with the head."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    head = model.bbox_head
    head.k_one2many = 2
    data = model.data_preprocessor(_batch(cfg, [0]), training=True)
    sample = data['data_samples'][0]
    n_gt = len(sample.gt_instances)
    assert n_gt > 0
    hidden = torch.randn(3, 1, 1800, 64)
    losses = head.loss(hidden, [sample])
    repeated = head._repeat(sample.gt_instances)
    assert len(repeated) == 2 * n_gt
    cls, boxes = head(hidden)
    manual = head.loss_by_feat(cls[:, :, 300:], boxes[:, :, 300:], [repeated],
                               [sample.metainfo])
    for key, value in manual.items():
        torch.testing.assert_close(losses[f'{key}_one2many'], value)
    with pytest.raises(ValueError, match='num_queries'):
        head.loss(hidden[:, :, :500], [sample])


def test_no_object_weight_follows_detr(cfg):
    head = build_model(cfg.model).bbox_head
    assert head.bg_cls_weight == pytest.approx(0.1)
    weight = torch.as_tensor(head.loss_cls.class_weight)
    assert weight.shape == (81, )
    assert weight[-1] == pytest.approx(0.1) and weight[:80].eq(1).all()


def test_predict_boxes_inside_images(cfg):
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.eval()
    data = model.data_preprocessor(_batch(cfg, [0, 1]), training=False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for sample in results:
        pred = sample.pred_instances
        assert len(pred) == 100  # test_cfg.max_per_img
        h, w = sample.ori_shape
        assert (pred.bboxes[:, 0::2] >= 0).all()
        assert (pred.bboxes[:, 0::2] <= w + 1e-3).all()
        assert (pred.bboxes[:, 1::2] <= h + 1e-3).all()
        assert pred.labels.max() < 80


def test_padding_does_not_leak_into_queries(cfg):
    """With DETR's padding mask, the decoder ignores the neck's values on
    the batch padding of an image."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.eval()
    decoder = model.decoder
    feats = [torch.randn(1, 32, 32 // s, 64 // s) for s in (1, 2, 4, 8)]
    mask = torch.zeros(1, 128, 256, dtype=torch.bool)
    mask[:, :, 128:] = True  # right half is padding
    queries = decoder.queries.finetune_queries(1)[:, :300]
    with torch.no_grad():
        a = decoder(feats, queries=queries, padding_mask=mask)
        changed = [f.clone() for f in feats]
        for f in changed:
            f[..., f.shape[-1] // 2:] += 5.0
        b = decoder(changed, queries=queries, padding_mask=mask)
        c = decoder(changed, queries=queries)
    torch.testing.assert_close(a['query_states'], b['query_states'])
    assert not torch.allclose(a['query_states'], c['query_states'])


def test_overfits_two_images(cfg):
    """30 AdamW steps on two COCO128 images lower the total loss (issue 4:
    the detection loss falls over 30 iterations with a fixed seed)."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.train()
    data = model.data_preprocessor(_batch(cfg, [0, 1]), training=True)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    totals = []
    for _ in range(30):
        losses = model.loss(data['inputs'], data['data_samples'])
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert totals[-1] < 0.8 * totals[0], totals


def test_pretraining_weights_load_into_detector(cfg, project_root):
    """Backbone, BiFPN and decoder names match the GLID pre-training model;
    only the new head and the fine-tuning query embeddings are missing."""
    pre_cfg = Config.fromfile(osp.join(project_root, PRETRAIN))
    init_default_scope('mmpretrain')
    pretrain = build_model(pre_cfg.model)
    init_default_scope('mmdet')
    model = build_model(cfg.model)
    state = {
        k: v
        for k, v in pretrain.state_dict().items()
        if k.startswith(('backbone.', 'neck.',
                         'decoder.')) and 'mask_token' not in k
    }
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys)
    assert missing == {
        'decoder.queries.query_embed', 'bbox_head.fc_cls.weight',
        'bbox_head.fc_cls.bias', 'bbox_head.fc_reg.weight',
        'bbox_head.fc_reg.bias'
    }, missing
    assert not result.unexpected_keys, result.unexpected_keys


def test_head_size_of_coco_config(project_root):
    """Measured head size at the paper's widths, next to supp. Table 3
    (Det 0.5 M; see GLIDDETRHead's docstring)."""
    cfg = Config.fromfile(osp.join(project_root, SWIN_B))
    init_default_scope('mmdet')
    head_cfg = copy.deepcopy(cfg.model.bbox_head)
    head_cfg.train_cfg = cfg.model.train_cfg
    head_cfg.test_cfg = cfg.model.test_cfg
    head = build_model(head_cfg)
    assert sum(p.numel() for p in head.parameters()) == 43_605
    assert cfg.model.bbox_head.num_queries == 300
    assert cfg.model.bbox_head.num_queries_one2many == 1500
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    assert cfg.train_cfg.max_epochs == 50
    assert cfg.param_scheduler[0].milestones == [40]
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.model.backbone.drop_path_rate == 0.1


def test_image_without_annotations(cfg):
    """An image with no box: every query is matched to "no object" and the
    loss stays finite (box terms 0 for it), in both query groups."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.train()
    data = model.data_preprocessor(_batch(cfg, [0, 1]), training=True)
    for sample in data['data_samples']:
        sample.gt_instances = sample.gt_instances[:0]
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_bbox'] == 0 and losses['loss_bbox_one2many'] == 0
    assert losses['loss_cls'] > 0
    sum(losses.values()).backward()
