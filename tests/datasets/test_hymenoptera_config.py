"""configs/_base_/datasets/hymenoptera.py: mmpretrain's CustomDataset on the
bundled ImageFolder layout (no glid_mm class involved)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

# as on disk; data/README.md says 245 train, but train/ants holds 122 jpgs
SIZES = dict(train=dict(ants=122, bees=121), val=dict(ants=70, bees=83))


@pytest.fixture(scope='module')
def cfg(project_root, data_root):
    cfg = Config.fromfile(
        osp.join(project_root, 'configs/_base_/datasets/hymenoptera.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = osp.join(data_root, 'hymenoptera')
    return cfg


def _build(dataset_cfg):
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    return DATASETS.build(dataset_cfg)


@pytest.mark.parametrize('split,total', [('train', 243), ('val', 153)])
def test_sizes_and_labels_match_disk(cfg, data_root, split, total):
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset = _build(loader.dataset)
    assert dataset.metainfo['classes'] == ('ants', 'bees')
    assert len(dataset) == total
    for label, name in enumerate(('ants', 'bees')):
        files = sorted(
            glob.glob(
                osp.join(data_root, 'hymenoptera', split, name, '*.jpg')))
        assert len(files) == SIZES[split][name]
        paths = sorted(
            dataset.get_data_info(i)['img_path'] for i in range(len(dataset))
            if dataset.get_data_info(i)['gt_label'] == label)
        assert paths == files
    assert sum(SIZES[split].values()) == total


def test_pipelines_give_112px(cfg):
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        sample = _build(loader.dataset)[0]
        assert tuple(sample['inputs'].shape) == (3, 112, 112)
        assert sample['data_samples'].gt_label.tolist() in ([0], [1])
    assert cfg.data_preprocessor.num_classes == 2
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, ))
