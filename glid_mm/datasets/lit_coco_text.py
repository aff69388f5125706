"""Text targets derived from COCO instance annotations (LiT decoder tasks).

There is no caption or VQA ground truth in the bundled data (see
``../shared/data/README.md``), so the LiT decoder's text tasks on COCO128
are *derived from real annotations*:

* ``target='categories'``: the sorted, de-duplicated names of the COCO
  categories annotated in the image, joined by ``', '`` (crowd regions
  count: they are objects present), e.g. ``'dog, person, surfboard'``;
  ``'none'`` for an image without annotations.
* ``target='person_count'``: the number of non-crowd ``person`` instances,
  written in digits (``'0'``, ``'3'``, ``'12'``). Crowd annotations are left
  out because one crowd region stands for an unknown number of people.

COCO128 has no validation split; ``split`` divides it deterministically by
image id (every ``val_interval``-th image of the id-sorted list is ``val``).
"""
import json
import os.path as osp
from collections import Counter
from typing import List

from mmengine.dataset import BaseDataset

from glid_mm.registry import DATASETS

TARGETS = ('categories', 'person_count')
SPLITS = ('all', 'train', 'val')


@DATASETS.register_module(scopes=('mmpretrain', ))
class LiTCocoTextDataset(BaseDataset):
    """COCO images with a derived text label in ``gt_text``.

    Args:
        data_root (str): COCO root, e.g. ``'../shared/data/coco128/'``.
        ann_file (str): Instances json. Defaults to
            ``'annotations/instances.json'``.
        data_prefix (dict): Defaults to ``dict(img_path='images/')``.
        target (str): ``'categories'`` or ``'person_count'``.
        split (str): ``'all'``, ``'train'`` or ``'val'``. Defaults to
            ``'all'``.
        val_interval (int): Every ``val_interval``-th image (by id) is val.
            Defaults to 4 (COCO128: 96 train / 32 val).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``test_mode``, ...).

    Data info: ``img_path``, ``image_id``, ``gt_text``.
    """

    def __init__(self,
                 data_root: str,
                 target: str,
                 ann_file: str = 'annotations/instances.json',
                 data_prefix: dict = dict(img_path='images/'),
                 split: str = 'all',
                 val_interval: int = 4,
                 **kwargs) -> None:
        if target not in TARGETS:
            raise ValueError(f'target={target!r} is not one of {TARGETS}')
        if split not in SPLITS:
            raise ValueError(f'split={split!r} is not one of {SPLITS}')
        if not isinstance(val_interval, int) or val_interval < 2:
            raise ValueError(f'val_interval must be an int >= 2, got '
                             f'{val_interval!r}')
        self.target = target
        self.split = split
        self.val_interval = val_interval
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        with open(self.ann_file) as f:
            coco = json.load(f)
        names = {c['id']: c['name'] for c in coco['categories']}
        person = [i for i, n in names.items() if n == 'person']
        cats, persons = {}, Counter()
        for ann in coco['annotations']:
            cats.setdefault(ann['image_id'],
                            set()).add(names[ann['category_id']])
            if ann['category_id'] in person and not ann.get('iscrowd', 0):
                persons[ann['image_id']] += 1
        images = sorted(coco['images'], key=lambda im: im['id'])
        data_list = []
        for i, img in enumerate(images):
            is_val = i % self.val_interval == self.val_interval - 1
            if (self.split == 'train' and is_val) or \
                    (self.split == 'val' and not is_val):
                continue
            if self.target == 'categories':
                text = ', '.join(sorted(cats.get(img['id'], ()))) or 'none'
            else:
                text = str(persons[img['id']])
            data_list.append(
                dict(
                    img_path=osp.join(self.data_prefix['img_path'],
                                      img['file_name']),
                    image_id=img['id'],
                    gt_text=text))
        return data_list
