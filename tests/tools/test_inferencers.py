"""The toolboxes' inferencers, as users run them, on glid_mm configs (GLID
nano det / semseg / pose, the M3I linear probe) with random-init
checkpoints and a bundled image."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model
from glid_mm.utils.mim import load_config

GLID = 'configs/glid/'
DET = GLID + 'glid-det_swin-nano_1xb8-2k_coco128-320x240.py'
SEMSEG = GLID + 'glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'
POSE = GLID + 'glid-pose_swin-nano_1xb4-60e_coco-samples-256x192.py'
PROBE = 'configs/m3i/m3i-probe_vit-tiny-p16_1xb32-30e_hymenoptera-64px.py'


@pytest.fixture
def in_project(project_root, data_root, monkeypatch):
    """Configs resolve ``../shared/data`` (GLID_MM_DATA) from the repo."""
    monkeypatch.chdir(project_root)
    monkeypatch.setenv('GLID_MM_DATA', data_root)
    return project_root


def random_checkpoint(config: str, path) -> str:
    """Random weights; ``meta.dataset_meta`` as the runner saves it in
    trained checkpoints (the inferencers take class names from it)."""
    cfg = load_config(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True))
    meta = dict(dataset_meta=dataset.metainfo)
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, str(path))
    return str(path)


def predict_first_test_sample(inferencer, config: str):
    """``model.test_step`` of the inferencer's model on the first sample of
    the config's test set, through the config's own test pipeline, and
    that sample's image path: the reference for the inferencer's output."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS
    cfg = load_config(config)
    init_default_scope(cfg.default_scope)
    data = DATASETS.build(cfg.test_dataloader.dataset)[0]
    model = inferencer.model.eval()
    with torch.no_grad():
        pred = model.test_step(pseudo_collate([data]))[0]
    return pred, data['data_samples'].img_path


def first_image(folder: str) -> str:
    names = sorted(
        f for f in os.listdir(folder) if f.lower().endswith(('.jpg', '.png')))
    return osp.join(folder, names[0])


@pytest.mark.slow
def test_det_inferencer(in_project, data_root, tmp_path):
    from mmdet.apis import DetInferencer
    ckpt = random_checkpoint(DET, tmp_path / 'det.pth')
    image = first_image(osp.join(data_root, 'coco128', 'images'))
    inferencer = DetInferencer(
        model=DET, weights=ckpt, device='cpu', show_progress=False)
    out = inferencer(image, return_datasamples=True)
    pred = out['predictions'][0].pred_instances
    boxes = pred.bboxes.numpy()
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 0
    assert pred.scores.shape == (len(boxes), )
    # the plain (dict) output and a painted image, as users get them
    res = inferencer(image, out_dir=str(tmp_path / 'out'), no_save_pred=False)
    assert np.asarray(res['predictions'][0]['bboxes']).shape[1] == 4
    assert os.listdir(tmp_path / 'out' / 'vis')
    # the inferencer's boxes are the model's predictions on the same image
    ref, path = predict_first_test_sample(inferencer, DET)
    got = inferencer(path, return_datasamples=True)['predictions'][0]
    for key in ('bboxes', 'scores', 'labels'):
        torch.testing.assert_close(got.pred_instances[key],
                                   ref.pred_instances[key])


@pytest.mark.slow
def test_seg_inferencer(in_project, data_root, tmp_path):
    import mmcv
    from mmseg.apis import MMSegInferencer
    ckpt = random_checkpoint(SEMSEG, tmp_path / 'seg.pth')
    image = first_image(osp.join(data_root, 'camvid', 'images', 'val'))
    h, w = mmcv.imread(image).shape[:2]
    inferencer = MMSegInferencer(model=SEMSEG, weights=ckpt, device='cpu')
    assert len(inferencer.model.dataset_meta['classes']) == 11  # not
    # Cityscapes' 19 (mmseg's fallback without meta.dataset_meta)
    out = inferencer(image, out_dir=str(tmp_path / 'out'))
    seg = np.asarray(out['predictions'])
    assert seg.shape == (h, w)
    assert seg.min() >= 0 and seg.max() < 11  # CamVid's 11 classes
    assert os.listdir(tmp_path / 'out' / 'vis')
    # the inferencer's map is the model's prediction on the same image
    ref, path = predict_first_test_sample(inferencer, SEMSEG)
    got = inferencer(path, return_datasamples=True)  # mmseg: the sample
    assert torch.equal(got.pred_sem_seg.data, ref.pred_sem_seg.data)
    # random weights may give one class everywhere: the logits too
    torch.testing.assert_close(got.seg_logits.data, ref.seg_logits.data)
    assert ref.seg_logits.data.std() > 0


@pytest.mark.slow
def test_pose_inference_topdown(in_project, data_root, tmp_path):
    from mmpose.apis import inference_topdown, init_model
    ckpt = random_checkpoint(POSE, tmp_path / 'pose.pth')
    folder = osp.join(data_root, 'pose', 'coco')
    with open(osp.join(folder, 'test_coco.json')) as f:
        coco = json.load(f)
    ann = next(a for a in coco['annotations'] if a['num_keypoints'] > 0)
    img = next(i for i in coco['images'] if i['id'] == ann['image_id'])
    x, y, bw, bh = ann['bbox']
    model = init_model(POSE, ckpt, device='cpu')
    results = inference_topdown(model, osp.join(folder, img['file_name']),
                                np.array([[x, y, x + bw, y + bh]]))
    assert len(results) == 1
    kpts = results[0].pred_instances.keypoints
    assert kpts.shape == (1, 17, 2)
    assert results[0].pred_instances.keypoint_scores.shape == (1, 17)


@pytest.mark.slow
def test_pretrain_inferencer(in_project, data_root, tmp_path):
    from mmpretrain import ImageClassificationInferencer
    ckpt = random_checkpoint(PROBE, tmp_path / 'probe.pth')
    folder = osp.join(data_root, 'hymenoptera', 'val')
    cls_dir = sorted(os.listdir(folder))[0]
    image = first_image(osp.join(folder, cls_dir))
    inferencer = ImageClassificationInferencer(
        model=PROBE, pretrained=ckpt, device='cpu')
    out = inferencer(image)[0]
    scores = np.asarray(out['pred_scores'])
    assert scores.shape == (2, )  # ants, bees
    assert abs(float(scores.sum()) - 1) < 1e-4
    assert out['pred_label'] in (0, 1)
