"""CamVidDataset and configs/_base_/datasets/camvid.py on the bundled data."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.datasets import CamVidDataset

CLASSES = ('sky', 'building', 'pole', 'road', 'pavement', 'tree',
           'sign_symbol', 'fence', 'car', 'pedestrian', 'bicyclist')


@pytest.fixture(scope='module')
def cfg(project_root, data_root):
    cfg = Config.fromfile(
        osp.join(project_root, 'configs/_base_/datasets/camvid.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = osp.join(data_root, 'camvid')
    return cfg


def _build(dataset_cfg):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(dataset_cfg)


def test_registered_in_mmseg_only():
    from mmdet.registry import DATASETS as MMDET_DATASETS
    from mmseg.registry import DATASETS as MMSEG_DATASETS
    assert MMSEG_DATASETS.get('CamVidDataset') is CamVidDataset
    assert MMSEG_DATASETS.get('mmseg.CamVidDataset') is CamVidDataset
    assert MMDET_DATASETS.get('CamVidDataset') is None


@pytest.mark.parametrize('split,size', [('train', 367), ('val', 101)])
def test_sizes_and_pairs_match_disk(cfg, data_root, split, size):
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset = _build(loader.dataset)
    images = sorted(
        glob.glob(osp.join(data_root, 'camvid', 'images', split, '*.jpg')))
    assert len(images) == size
    assert len(dataset) == len(images)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert sorted(i['img_path'] for i in infos) == images
    for info in infos:
        stem = osp.splitext(osp.basename(info['img_path']))[0]
        assert osp.basename(info['seg_map_path']) == stem + '.png'
        assert osp.isfile(info['seg_map_path'])
        assert info['reduce_zero_label'] is False


def test_metainfo(cfg):
    dataset = _build(cfg.val_dataloader.dataset)
    assert dataset.metainfo['classes'] == CLASSES
    palette = dataset.metainfo['palette']
    assert len(palette) == 11
    assert len({tuple(c) for c in palette}) == 11
    assert dataset.ignore_index == 255


def test_label_values(data_root):
    """Every label map holds only class ids 0..10 and void 255."""
    files = sorted(
        glob.glob(osp.join(data_root, 'camvid', 'labels', '*', '*.png')))
    assert len(files) == 367 + 101
    seen = set()
    for path in files:
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint8 and label.ndim == 2, path
        seen.update(np.unique(label).tolist())
    assert seen <= set(range(11)) | {255}
    assert set(range(11)) <= seen  # every class occurs somewhere


def test_pipelines(cfg):
    train = _build(cfg.train_dataloader.dataset)
    for i in range(3):
        sample = train[i]
        _, h, w = sample['inputs'].shape
        # RandomResize(0.5..2) then RandomCrop(360, 480): at most the crop
        assert h <= 360 and w <= 480
        seg = sample['data_samples'].gt_sem_seg.data
        assert tuple(seg.shape) == (1, h, w)
        assert set(seg.unique().tolist()) <= set(range(11)) | {255}
    val = _build(cfg.val_dataloader.dataset)
    sample = val[0]
    # annotations load after Resize: ground truth stays as on disk
    assert tuple(sample['data_samples'].gt_sem_seg.data.shape) == (1, 360, 480)
    raw = cv2.imread(
        val.get_data_info(0)['seg_map_path'], cv2.IMREAD_UNCHANGED)
    assert np.array_equal(sample['data_samples'].gt_sem_seg.data[0].numpy(),
                          raw)


def test_reduce_zero_label_is_refused(cfg):
    dataset_cfg = cfg.val_dataloader.dataset.copy()
    dataset_cfg.reduce_zero_label = True
    with pytest.raises(ValueError, match='reduce_zero_label=True'):
        _build(dataset_cfg)
