"""Bad input files give errors that name the file, through each toolbox's
real dataset config and pipeline on copies of the bundled data.

- missing / corrupt images (all four toolboxes): the stock loaders already
  name the file (mmcv's ``LoadImageFromFile``, mmpose's ``LoadImage``);
- depth maps of the wrong dtype, shape or channels, or undecodable:
  ``CheckDepthMap`` in ``configs/_base_/datasets/nyu_depth.py``;
- CamVid labels with ids outside the 11 classes / 255, colour labels,
  labels of another size: ``CheckSegLabels`` in
  ``configs/_base_/datasets/camvid.py``.

About 15 s on one CPU core.
"""
import copy
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.datasets.transforms import CheckDepthMap, CheckSegLabels


def _cfg(project_root, name):
    return Config.fromfile(
        osp.join(project_root, 'configs/_base_/datasets', name))


def _build(scope, dataset_cfg):
    import importlib
    registry = importlib.import_module(f'{scope}.registry')
    init_default_scope(scope)
    return registry.DATASETS.build(copy.deepcopy(dataset_cfg))


def _truncate(path):
    """Keep the first half of the file, as an interrupted copy does."""
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def _index(dataset, path):
    return next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['img_path'] == path)


# ----------------------------------------------------------------------
# item 1: missing or corrupt image files, per toolbox
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def coco128_copy(data_root, tmp_path_factory):
    """COCO128's json with 3 of its images: one truncated, one deleted."""
    root = tmp_path_factory.mktemp('coco128')
    shutil.copytree(
        osp.join(data_root, 'coco128/annotations'), root / 'annotations')
    (root / 'images').mkdir()
    names = ['000000000009.jpg', '000000000025.jpg', '000000000030.jpg']
    for name in names[:2]:
        shutil.copy(
            osp.join(data_root, 'coco128/images', name), root / 'images')
    _truncate(root / 'images' / names[1])
    return root, [str(root / 'images' / n) for n in names]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_mmdet_missing_and_truncated_image(project_root, coco128_copy, split):
    root, (good, truncated, missing) = coco128_copy
    cfg = _cfg(project_root, 'coco128_detection.py')
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset_cfg.data_root = str(root)
    dataset = _build('mmdet', dataset_cfg)
    sample = dataset[_index(dataset, good)]
    assert sample['data_samples'].img_path == good
    with pytest.raises(
            AssertionError, match=f'failed to load image: {truncated}$'):
        dataset[_index(dataset, truncated)]
    with pytest.raises(FileNotFoundError, match=missing):
        dataset[_index(dataset, missing)]


def test_mmseg_truncated_image_and_missing_label(project_root, data_root,
                                                 tmp_path):
    src = osp.join(data_root, 'camvid')
    for sub in ('images/train', 'labels/train'):
        (tmp_path / sub).mkdir(parents=True)
    names = ['0001TP_006690', '0001TP_006720']
    for name in names:
        shutil.copy(f'{src}/images/train/{name}.jpg',
                    tmp_path / 'images/train')
    shutil.copy(f'{src}/labels/train/{names[0]}.png',
                tmp_path / 'labels/train')
    _truncate(tmp_path / f'images/train/{names[0]}.jpg')
    cfg = _cfg(project_root, 'camvid.py')
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    dataset = _build('mmseg', cfg.train_dataloader.dataset)
    assert len(dataset) == 2
    image = str(tmp_path / f'images/train/{names[0]}.jpg')
    with pytest.raises(AssertionError, match=f'failed to load image: {image}'):
        dataset[_index(dataset, image)]
    label = str(tmp_path / f'labels/train/{names[1]}.png')
    with pytest.raises(FileNotFoundError, match=label):
        dataset[_index(dataset,
                       str(tmp_path / f'images/train/{names[1]}.jpg'))]


def test_mmpose_missing_and_truncated_image(project_root, data_root, tmp_path):
    src = osp.join(data_root, 'pose/coco')
    shutil.copy(f'{src}/test_coco.json', tmp_path)
    shutil.copy(f'{src}/000000000785.jpg', tmp_path)
    _truncate(tmp_path / '000000000785.jpg')
    cfg = _cfg(project_root, 'coco_keypoints_samples.py')
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    dataset = _build('mmpose', cfg.train_dataloader.dataset)
    truncated = str(tmp_path / '000000000785.jpg')
    missing = str(tmp_path / '000000040083.jpg')
    with pytest.raises(AssertionError) as err:
        dataset[_index(dataset, truncated)]
    assert f'failed to load image: {truncated}' in str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        dataset[_index(dataset, missing)]
    assert f'occurs when loading `{missing}`' in str(err.value)


def test_mmpretrain_missing_and_truncated_image(project_root, data_root,
                                                tmp_path):
    src = osp.join(data_root, 'hymenoptera/train')
    for cls in ('ants', 'bees'):
        (tmp_path / 'train' / cls).mkdir(parents=True)
    shutil.copy(f'{src}/ants/0013035.jpg', tmp_path / 'train/ants/a.jpg')
    shutil.copy(f'{src}/ants/0013035.jpg', tmp_path / 'train/bees/b.jpg')
    _truncate(tmp_path / 'train/ants/a.jpg')
    (tmp_path /
     'train.txt').write_text('ants/a.jpg 0\nbees/b.jpg 1\nbees/gone.jpg 1\n')
    cfg = _cfg(project_root, 'hymenoptera.py')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(data_root=str(tmp_path), ann_file='train.txt')
    dataset = _build('mmpretrain', dataset_cfg)
    assert len(dataset) == 3
    assert dataset[1]['data_samples'].gt_label.item() == 1
    truncated = str(tmp_path / 'train/ants/a.jpg')
    with pytest.raises(
            AssertionError, match=f'failed to load image: {truncated}'):
        dataset[0]
    with pytest.raises(
            FileNotFoundError, match=str(tmp_path / 'train/bees/gone.jpg')):
        dataset[2]


def test_empty_image_file_is_not_named_upstream(tmp_path):
    """Documents a gap left upstream: a 0-byte image makes OpenCV raise
    without the file name (mmcv 2.1 ``LoadImageFromFile``). When this test
    fails, mmcv names it and docs/reliability.md can drop the note."""
    from mmcv.transforms import LoadImageFromFile
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(cv2.error) as err:
        LoadImageFromFile()(dict(img_path=str(empty)))
    assert str(empty) not in str(err.value)


# ----------------------------------------------------------------------
# item 6: depth maps
# ----------------------------------------------------------------------
NYU = 'bookstore_0001d_00001'


@pytest.fixture
def nyu_copy(data_root, tmp_path):
    shutil.copytree(osp.join(data_root, 'depth/nyu'), tmp_path / 'nyu')
    png = str(tmp_path / 'nyu/depth_mm' / f'{NYU}.png')
    return tmp_path / 'nyu', png, cv2.imread(png, cv2.IMREAD_UNCHANGED)


def _depth_dataset(project_root, root, split, check=True):
    cfg = _cfg(project_root, 'nyu_depth.py')
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset_cfg.data_root = str(root)
    if not check:
        dataset_cfg.pipeline = [
            t for t in dataset_cfg.pipeline if t.type != 'CheckDepthMap'
        ]
    return _build('mmseg', dataset_cfg)


def test_depth_configs_check_before_loading(project_root):
    for name in ('nyu_depth.py', 'redwood_depth.py'):
        cfg = _cfg(project_root, name)
        for loader in (cfg.train_dataloader, cfg.val_dataloader):
            types = [t.type for t in loader.dataset.pipeline]
            i = types.index('LoadDepthAnnotation')
            assert types[i - 1] == 'CheckDepthMap'
            assert loader.dataset.pipeline[i - 1].dtype == 'uint16'


@pytest.mark.parametrize('split', ['train', 'val'])
@pytest.mark.parametrize('breakage,words', [
    ('uint8', 'is uint8, expected uint16'),
    ('half_size', 'is 60x80 (h x w) but its image {img} is 120x160'),
    ('three_channels', 'has shape (120, 160, 3): expected one channel'),
    ('truncated', 'cannot be decoded: truncated or not an image'),
])
def test_bad_depth_map_is_named(project_root, nyu_copy, split, breakage,
                                words):
    root, png, raw = nyu_copy
    if breakage == 'uint8':
        cv2.imwrite(png, (raw // 256).astype(np.uint8))
    elif breakage == 'half_size':
        cv2.imwrite(png,
                    cv2.resize(raw, (80, 60), interpolation=cv2.INTER_NEAREST))
    elif breakage == 'three_channels':
        cv2.imwrite(png, np.stack([raw] * 3, axis=-1))
    else:
        _truncate(png)
    dataset = _depth_dataset(project_root, root, split)
    img = str(root / 'images' / f'{NYU}.jpg')
    with pytest.raises(ValueError) as err:
        dataset[0]
    assert str(err.value).startswith(f'depth map {png} ')
    assert words.format(img=img) in str(err.value)


def test_why_uint8_depth_must_fail(project_root, nyu_copy):
    """Without the check a uint8 depth png loads as depths under 0.26 m."""
    root, png, raw = nyu_copy
    assert raw.max() > 5000  # real millimetres: over 5 m somewhere
    cv2.imwrite(png, (raw // 256).astype(np.uint8))
    dataset = _depth_dataset(project_root, root, 'val', check=False)
    depth = dataset[0]['data_samples'].gt_depth_map.data
    assert 0 < depth.max().item() < 0.26


def test_missing_depth_map_is_named(project_root, nyu_copy):
    root, png, _ = nyu_copy
    os.remove(png)
    dataset = _depth_dataset(project_root, root, 'train')
    with pytest.raises(FileNotFoundError, match=png):
        dataset[0]


# ----------------------------------------------------------------------
# item 7: CamVid labels
# ----------------------------------------------------------------------
CAMVID = '0001TP_006690'


@pytest.fixture
def camvid_copy(data_root, tmp_path):
    src = osp.join(data_root, 'camvid')
    for sub in ('images/val', 'labels/val'):
        (tmp_path / sub).mkdir(parents=True)
    shutil.copy(f'{src}/images/train/{CAMVID}.jpg', tmp_path / 'images/val')
    shutil.copy(f'{src}/labels/train/{CAMVID}.png', tmp_path / 'labels/val')
    png = str(tmp_path / 'labels/val' / f'{CAMVID}.png')
    return tmp_path, png, cv2.imread(png, cv2.IMREAD_UNCHANGED)


def _camvid(project_root, root, split):
    cfg = _cfg(project_root, 'camvid.py')
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset_cfg.update(
        data_root=str(root),
        data_prefix=dict(img_path='images/val', seg_map_path='labels/val'))
    return _build('mmseg', dataset_cfg)


def test_camvid_config_checks_right_after_loading(project_root):
    cfg = _cfg(project_root, 'camvid.py')
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        types = [t.type for t in loader.dataset.pipeline]
        i = types.index('LoadAnnotations')
        check = loader.dataset.pipeline[i + 1]
        assert check.type == 'CheckSegLabels'
        assert (check.num_classes, check.ignore_index) == (11, 255)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_camvid_label_outside_the_classes(project_root, camvid_copy, split):
    root, png, label = camvid_copy
    assert set(np.unique(label)) <= set(range(11)) | {255}
    assert _camvid(project_root, root, split)[0]  # the real label passes
    label = label.copy()
    label[:10, :20] = 11  # the original CamVid void id
    label[-1, -3:] = 40
    cv2.imwrite(png, label)
    with pytest.raises(ValueError) as err:
        _camvid(project_root, root, split)[0]
    msg = str(err.value)
    assert msg.startswith(f'label map {png} has ids [11, 40] outside the 11 '
                          'classes (0..10) and ignore_index 255')
    assert '(pixels per id: 11: 200, 40: 3)' in msg


@pytest.mark.parametrize('breakage,words', [
    ('colour', 'has shape (360, 480, 3): expected one class id per pixel'),
    ('half_size', 'is 180x240 (h x w) but its image {img} is 360x480'),
])
def test_camvid_colour_or_resized_label(project_root, camvid_copy, breakage,
                                        words):
    root, png, label = camvid_copy
    if breakage == 'colour':
        cv2.imwrite(png, np.stack([label] * 3, axis=-1))
    else:
        cv2.imwrite(
            png,
            cv2.resize(label, (240, 180), interpolation=cv2.INTER_NEAREST))
    img = str(root / 'images/val' / f'{CAMVID}.jpg')
    with pytest.raises(ValueError) as err:
        _camvid(project_root, root, 'val')[0]
    assert words.format(img=img) in str(err.value)
    assert png in str(err.value)


# ----------------------------------------------------------------------
# the transforms themselves
# ----------------------------------------------------------------------
def test_check_transforms_are_registered_in_mmseg():
    from mmseg.registry import TRANSFORMS
    init_default_scope('mmseg')
    assert TRANSFORMS.get('CheckSegLabels') is CheckSegLabels
    assert TRANSFORMS.get('CheckDepthMap') is CheckDepthMap
    check = TRANSFORMS.build(dict(type='CheckSegLabels', num_classes=3))
    label = np.array([[0, 2], [255, 1]], dtype=np.int64)  # not uint8 too
    assert check(dict(gt_seg_map=label, seg_map_path='x.png'))
    with pytest.raises(ValueError, match=r'ids \[3\]'):
        check(dict(gt_seg_map=label + (label == 2), seg_map_path='x.png'))


@pytest.mark.parametrize('build,error', [
    (lambda: CheckSegLabels(num_classes=0), ValueError),
    (lambda: CheckSegLabels(num_classes=True), ValueError),
    (lambda: CheckSegLabels(num_classes=11, ignore_index='255'), TypeError),
    (lambda: CheckDepthMap(dtype='no_such_dtype'), TypeError),
    (lambda: CheckDepthMap(decode_backend='pil'), ValueError),
])
def test_bad_arguments(build, error):
    with pytest.raises(error):
        build()
