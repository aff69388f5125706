"""The README's drop-in example: mmdet's own DETR config with the model
swapped for GLID's BiFPN + decoder + head keeps mmdet's data pipeline and
evaluator, builds, and trains a step on real COCO128 images."""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model

CFG = 'configs/examples/detr-r50_glid-bifpn-decoder_coco.py'


def test_glid_pieces_under_mmdet_detr_config(project_root, data_root):
    cfg = Config.fromfile(osp.join(project_root, CFG))
    # mmdet's DETR pipeline and metric are kept as they are
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.train_dataloader.dataset.pipeline[-1].type == 'PackDetInputs'
    assert cfg.model.type == 'GLIDDETR'
    init_default_scope('mmdet')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # no download in tests
    model_cfg.backbone.depth = 18  # CPU-sized; same code path
    model_cfg.neck.in_channels = [64, 128, 256, 512]
    torch.manual_seed(0)
    model = build_model(model_cfg)
    assert model.decoder.queries.num_queries == 1800

    from mmdet.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    dataset_cfg.data_root = osp.join(data_root, 'coco128') + '/'
    dataset_cfg.ann_file = 'annotations/instances.json'
    dataset_cfg.data_prefix = dict(img='images/')
    # mmdet's test pipeline with a CPU-sized scale, annotations loaded
    load, resize, annotations, pack = dataset_cfg.pipeline
    resize.scale = (160, 120)
    dataset_cfg.pipeline = [load, annotations, resize, pack]
    dataset = DATASETS.build(dataset_cfg)
    data = model.data_preprocessor(
        pseudo_collate([dataset[0], dataset[1]]), training=True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.neck.parameters().__next__().grad is not None
