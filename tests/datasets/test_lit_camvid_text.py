"""Derived CamVid text task: the classes present in a frame."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from glid_mm.datasets import LiTCamVidTextDataset


def test_classes_present_match_label_map(data_root):
    ds = LiTCamVidTextDataset(
        data_root=osp.join(data_root, 'camvid'), split='val', min_fraction=0.)
    assert len(ds) == 101
    for i in (0, 50):
        info = ds.get_data_info(i)
        label = np.asarray(Image.open(info['seg_map_path']))
        ids = sorted(int(c) for c in np.unique(label) if c != 255)
        assert info['gt_text'] == ', '.join(ds.CLASSES[c] for c in ids)


def test_min_fraction_drops_tiny_regions(data_root):
    root = osp.join(data_root, 'camvid')
    loose = LiTCamVidTextDataset(data_root=root, split='val', min_fraction=0)
    strict = LiTCamVidTextDataset(
        data_root=root, split='val', min_fraction=0.05)

    def n(d):
        return sum(
            d.get_data_info(i)['gt_text'].count(',') for i in range(len(d)))

    assert n(strict) < n(loose)
    first = strict.get_data_info(0)['gt_text'].split(', ')
    assert first == [c for c in strict.CLASSES if c in first]  # id order


def test_bad_arguments_raise(data_root):
    root = osp.join(data_root, 'camvid')
    with pytest.raises(ValueError, match='split'):
        LiTCamVidTextDataset(data_root=root, split='test')
    with pytest.raises(ValueError, match='min_fraction'):
        LiTCamVidTextDataset(data_root=root, min_fraction=1.)
    with pytest.raises(FileNotFoundError, match='CamVid'):
        LiTCamVidTextDataset(data_root=root + '_missing')
