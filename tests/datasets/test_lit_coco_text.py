"""Derived COCO128 text tasks (categories present, person count)."""
import os.path as osp

import pytest
from pycocotools.coco import COCO

from glid_mm.datasets import LiTCocoTextDataset


@pytest.fixture(scope='module')
def coco(data_root):
    return COCO(
        osp.join(data_root, 'coco128', 'annotations', 'instances.json'))


def _ds(data_root, **kw):
    return LiTCocoTextDataset(data_root=osp.join(data_root, 'coco128'), **kw)


def test_categories_match_annotations(data_root, coco):
    ds = _ds(data_root, target='categories')
    assert len(ds) == 128
    for i in (0, 17, 100):
        info = ds.get_data_info(i)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=info['image_id']))
        names = sorted({coco.cats[a['category_id']]['name'] for a in anns})
        assert info['gt_text'] == (', '.join(names) or 'none')
        assert osp.isfile(info['img_path'])
    texts = [ds.get_data_info(i)['gt_text'] for i in range(len(ds))]
    assert texts.count('none') == 2  # COCO128: 2 images without objects


def test_person_count_ignores_crowd(data_root, coco):
    ds = _ds(data_root, target='person_count')
    total = 0
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        ids = coco.getAnnIds(
            imgIds=info['image_id'], catIds=[1], iscrowd=False)
        assert info['gt_text'] == str(len(ids))
        total += int(info['gt_text'])
    crowd = len(coco.getAnnIds(catIds=[1], iscrowd=True))
    assert total == 259 - crowd  # README: 259 persons incl. crowd regions


def test_deterministic_split(data_root):
    train = _ds(data_root, target='categories', split='train')
    val = _ds(data_root, target='categories', split='val')

    def ids(d):
        return {d.get_data_info(i)['image_id'] for i in range(len(d))}

    assert (len(train), len(val)) == (96, 32)
    assert not ids(train) & ids(val)


def test_bad_arguments_raise(data_root):
    with pytest.raises(ValueError, match='target'):
        _ds(data_root, target='captions')
    with pytest.raises(ValueError, match='split'):
        _ds(data_root, target='categories', split='test')
    with pytest.raises(ValueError, match='val_interval'):
        _ds(data_root, target='categories', val_interval=1)
