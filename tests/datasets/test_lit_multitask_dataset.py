"""LiTMultiTaskDataset: task tags, text targets of every target kind."""
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from glid_mm.datasets import LiTMultiTaskDataset

PACK = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs')
]


class _ListDataset:
    """In-memory stand-in for caption / VQA datasets (real ones need data
    that is not bundled)."""

    def __init__(self, infos):
        self.infos = infos
        self.metainfo = {}

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        return dict(self.infos[i], sample_idx=i)

    def __getitem__(self, i):
        s = DataSample(metainfo=dict(sample_idx=i))
        return dict(inputs=torch.zeros(3, 4, 4), data_samples=s)


@pytest.fixture(scope='module')
def real(data_root):
    init_default_scope('mmpretrain')
    return LiTMultiTaskDataset(
        tasks=dict(
            hym=dict(
                category='cls',
                target='class_name',
                dataset=dict(
                    type='CustomDataset',
                    data_root=osp.join(data_root, 'hymenoptera'),
                    data_prefix='val',
                    pipeline=PACK)),
            persons=dict(
                category='count',
                target='text',
                dataset=dict(
                    type='LiTCocoTextDataset',
                    data_root=osp.join(data_root, 'coco128'),
                    target='person_count',
                    split='val',
                    pipeline=PACK))))


def test_items_carry_task_and_text(real):
    assert len(real) == 153 + 32
    assert real.task_ranges == dict(hym=(0, 153), persons=(153, 185))
    item = real[0]
    s = item['data_samples']
    assert (s.task, s.task_category, s.gt_text, s.question) == ('hym', 'cls',
                                                                'ants', None)
    assert 'gt_label' not in s  # the text replaces it
    assert item['inputs'].shape == (3, 32, 32)
    last = real[-1]['data_samples']
    assert last.task == 'persons' and last.gt_text.isdigit()
    assert real.locate(153) == ('persons', 0)
    assert real.task_of(152) == 'hym'


def test_text_corpus(real):
    corpus = real.get_text_corpus()
    assert corpus['tasks'] == dict(hym='cls', persons='count')
    assert corpus['labels']['hym'] == ['ants', 'bees']
    assert set(corpus['labels']['persons']) <= set(map(str, range(30)))
    assert corpus['texts'][:2] == ['ants', 'bees']
    assert len(corpus['texts']) == 2 + 32


def test_caption_and_vqa_targets():
    ds = LiTMultiTaskDataset(
        tasks=dict(
            cap=dict(
                category='cap',
                target='caption',
                dataset=_ListDataset([
                    dict(img_path='a.jpg', gt_caption=['a dog.', 'a puppy.'])
                ])),
            vqa=dict(
                category='qa',
                target='vqa',
                dataset=_ListDataset([
                    dict(
                        img_path='a.jpg',
                        question='what is it?',
                        gt_answer=['cat', 'dog'],
                        gt_answer_weight=[0.3, 0.7])
                ]))))
    assert ds.get_text('cap', 0) == (None, 'a dog.', ['a dog.', 'a puppy.'])
    assert ds.get_text('vqa', 0) == ('what is it?', 'dog', ['dog', 'cat'])
    s = ds[1]['data_samples']
    assert s.question == 'what is it?' and s.gt_texts == ['dog', 'cat']
    assert s.gt_text_weights == [0.7, 0.3]  # annotator shares, same order
    assert ds[0]['data_samples'].gt_text_weights is None  # captions
    corpus = ds.get_text_corpus()
    assert corpus['texts'] == ['a dog.', 'dog', 'what is it?']


def test_bad_arguments_raise():
    one = _ListDataset([dict(img_path='a', gt_text='x')])
    with pytest.raises(ValueError, match='non-empty dict'):
        LiTMultiTaskDataset(tasks={})
    with pytest.raises(ValueError, match='misses'):
        LiTMultiTaskDataset(tasks=dict(t=dict(dataset=one, target='text')))
    with pytest.raises(ValueError, match='target'):
        LiTMultiTaskDataset(
            tasks=dict(t=dict(dataset=one, category='c', target='boxes')))
    with pytest.raises(ValueError, match='unknown keys'):
        LiTMultiTaskDataset(
            tasks=dict(
                t=dict(dataset=one, category='c', target='text', weight=2)))
    ds = LiTMultiTaskDataset(
        tasks=dict(t=dict(dataset=one, category='c', target='text')))
    with pytest.raises(IndexError):
        ds.locate(5)
