"""Input view + target view per image, crop boxes kept (M3I, Fig. 2)."""
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmpretrain.datasets.transforms import RandomResizedCrop

from glid_mm.registry import TRANSFORMS, build_nested


@TRANSFORMS.register_module(scopes=('mmpretrain', ))
class M3ITwoViews(BaseTransform):
    """Two augmented views of one image, with their crop geometry.

    M3I (Sec. 3.4, Fig. 2) needs for each image an input view ``x`` and a
    target view ``y``; the decoder's queries for ``y`` are placed relative
    to ``x``'s top-left origin, as in Siamese Image Modeling, so both crop
    boxes and flips are kept. Each view is a random resized crop (mmpretrain
    ``RandomResizedCrop``'s sampling, crop and resize), then a horizontal
    flip with probability ``flip_prob``, then an optional *photometric*
    pipeline (e.g. SiameseIM's colour jitter / grey / blur / solarize); a
    transform there that changes the view's shape raises, since it would
    break the kept geometry.

    **Required keys:** ``img``.

    **Modified keys:** ``img`` becomes ``[input_view, target_view]`` (two
    ``[h, w, 3]`` arrays, as mmpretrain's ``MultiView``), ``img_shape``.

    **Added keys:** ``m3i_boxes`` ``[2, 4]`` float32, ``(x0, y0, w, h)`` of
    the input / target crop in original-image pixels; ``m3i_flips`` ``[2]``
    bool. Pack them with ``PackInputs(algorithm_keys=('m3i_boxes',
    'm3i_flips'))``.

    Args:
        crop (dict): mmpretrain ``RandomResizedCrop`` config. Defaults to
            224 px, crop ratio (0.08, 1.0) (SiameseIM's ``crop_min``),
            bicubic / pillow.
        flip_prob (float): Horizontal flip probability per view. Defaults to
            0.5.
        input_pipeline (list[dict]): Photometric transforms of the input
            view. Defaults to none.
        target_pipeline (list[dict]): Photometric transforms of the target
            view. Defaults to none.
    """

    def __init__(self,
                 crop: dict = dict(
                     type='RandomResizedCrop',
                     scale=224,
                     crop_ratio_range=(0.08, 1.0),
                     backend='pillow',
                     interpolation='bicubic'),
                 flip_prob: float = 0.5,
                 input_pipeline: Optional[Sequence[dict]] = None,
                 target_pipeline: Optional[Sequence[dict]] = None) -> None:
        if not isinstance(crop, dict):
            raise TypeError(f'M3ITwoViews: crop must be a config dict, got '
                            f'crop={crop!r}')
        self.crop = build_nested(crop, 'TRANSFORMS', home='mmpretrain')
        if not isinstance(self.crop, RandomResizedCrop):
            raise TypeError('M3ITwoViews: crop must build an mmpretrain '
                            'RandomResizedCrop (its box is needed), got '
                            f"crop.type={crop.get('type')!r}")
        if not 0. <= float(flip_prob) <= 1.:
            raise ValueError(f'M3ITwoViews: flip_prob must lie in [0, 1], '
                             f'got flip_prob={flip_prob!r}')
        self.flip_prob = float(flip_prob)
        self.pipelines = [
            Compose([
                build_nested(t, 'TRANSFORMS', home='mmpretrain')
                for t in (p or [])
            ]) for p in (input_pipeline, target_pipeline)
        ]

    def _view(self, img: np.ndarray, pipeline: Compose, name: str):
        top, left, h, w = self.crop.rand_crop_params(img)
        view = mmcv.imcrop(img,
                           np.array([left, top, left + w - 1, top + h - 1]))
        view = mmcv.imresize(
            view,
            tuple(self.crop.scale[::-1]),
            interpolation=self.crop.interpolation,
            backend=self.crop.backend)
        flip = bool(np.random.rand() < self.flip_prob)
        if flip:
            view = mmcv.imflip(view, direction='horizontal')
        out = pipeline(dict(img=view, img_shape=view.shape[:2]))
        if out['img'].shape[:2] != view.shape[:2]:
            raise ValueError(
                f'M3ITwoViews: {name}_pipeline changed the view shape from '
                f"{view.shape[:2]} to {out['img'].shape[:2]}; only "
                'photometric transforms keep the crop geometry valid')
        return out['img'], [left, top, w, h], flip

    def transform(self, results: dict) -> dict:
        img = results['img']
        views: List[np.ndarray] = []
        boxes, flips = [], []
        for pipeline, name in zip(self.pipelines, ('input', 'target')):
            view, box, flip = self._view(img, pipeline, name)
            views.append(view)
            boxes.append(box)
            flips.append(flip)
        results['img'] = views
        results['img_shape'] = views[0].shape[:2]
        results['m3i_boxes'] = np.asarray(boxes, dtype=np.float32)
        results['m3i_flips'] = np.asarray(flips, dtype=bool)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop={self.crop!r}, '
                f'flip_prob={self.flip_prob}, '
                f'input_pipeline={self.pipelines[0]!r}, '
                f'target_pipeline={self.pipelines[1]!r})')
