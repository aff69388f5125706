"""Text targets derived from CamVid label maps (LiT decoder task).

No text ground truth exists for CamVid; the target is derived from the real
segmentation labels: the names of the classes present in the frame, in
CamVid's class order, joined by ``', '`` (e.g. ``'sky, building, road,
car'``). A class counts as present when it covers at least ``min_fraction``
of the frame's labelled pixels (default 0.1%, about 170 px of a 480x360
frame), which drops isolated mislabelled pixels; void (255) is ignored.
"""
import os
import os.path as osp
from typing import List

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image

from glid_mm.datasets.camvid import CamVidDataset
from glid_mm.registry import DATASETS


@DATASETS.register_module(scopes=('mmpretrain', ))
class LiTCamVidTextDataset(BaseDataset):
    """CamVid frames with ``gt_text`` = classes present.

    Args:
        data_root (str): e.g. ``'../shared/data/camvid/'`` with
            ``images/{split}/*.jpg`` and ``labels/{split}/*.png``.
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.
        min_fraction (float): Smallest share of labelled pixels for a class
            to count as present, in [0, 1). Defaults to 0.001.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments.

    Data info: ``img_path``, ``seg_map_path``, ``gt_text``.
    """

    CLASSES = CamVidDataset.METAINFO['classes']

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 min_fraction: float = 0.001,
                 **kwargs) -> None:
        if split not in ('train', 'val'):
            raise ValueError(f"split={split!r} is not 'train' or 'val'")
        if not 0. <= min_fraction < 1.:
            raise ValueError(f'min_fraction must be in [0, 1), got '
                             f'{min_fraction!r}')
        self.split = split
        self.min_fraction = min_fraction
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = osp.join(self.data_root, 'images', self.split)
        lbl_dir = osp.join(self.data_root, 'labels', self.split)
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'CamVid images not found at {img_dir}')
        data_list = []
        for name in sorted(os.listdir(img_dir)):
            if not name.endswith('.jpg'):
                continue
            seg = osp.join(lbl_dir, name[:-4] + '.png')
            label = np.asarray(Image.open(seg))
            counts = np.bincount(label.ravel(), minlength=256)[:256]
            valid = counts[:len(self.CLASSES)]
            total = max(int(valid.sum()), 1)
            present = [
                c for i, c in enumerate(self.CLASSES)
                if valid[i] > 0 and valid[i] / total >= self.min_fraction
            ]
            data_list.append(
                dict(
                    img_path=osp.join(img_dir, name),
                    seg_map_path=seg,
                    gt_text=', '.join(present) or 'none'))
        return data_list
