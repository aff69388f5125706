"""Per-sample input checks for mmseg pipelines: label ids and depth maps.

They change nothing; they raise naming the file and the offending values
where the stock loaders would go on with wrong targets (an out-of-range
class id becomes a wrong or out-of-bounds target index; a uint8 depth png
read with the millimetre factor of uint16 files becomes depths below
0.26 m) or fail without naming the file (a truncated depth png gives
``'NoneType' object has no attribute 'astype'``).
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio

from glid_mm.registry import TRANSFORMS


@TRANSFORMS.register_module(scopes=('mmseg', ))
class CheckSegLabels(BaseTransform):
    """Check a loaded label map: one class id per pixel, ids in range.

    Put it right after mmseg's ``LoadAnnotations`` (which already applied
    ``reduce_zero_label`` and the dataset's ``label_map``). Every pixel must
    be a class id ``0 .. num_classes - 1`` or ``ignore_index``; the map must
    be 2-D (not a colour-coded RGB label) and have the size of the image as
    read from disk (``ori_shape``). Costs one histogram per sample.

    **Required keys:** ``gt_seg_map``, ``seg_map_path``; ``ori_shape`` and
    ``img_path`` if present.

    Args:
        num_classes (int): Number of classes (CamVid: 11).
        ignore_index (int): The id of void / unlabelled pixels. Defaults to
            255 (mmseg's default).

    Raises:
        ValueError: Naming the label file, the offending ids and how many
            pixels have them, or the shape found and expected.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if not isinstance(num_classes, int) or isinstance(
                num_classes, bool) or num_classes < 1:
            raise ValueError(f'CheckSegLabels: num_classes must be a '
                             f'positive int, got {num_classes!r}')
        if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
            raise TypeError(f'CheckSegLabels: ignore_index must be an int, '
                            f'got {ignore_index!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        label = results['gt_seg_map']
        path = results.get('seg_map_path')
        if label.ndim != 2:
            raise ValueError(
                f'label map {path} has shape {label.shape}: expected one '
                'class id per pixel (h, w); a colour-coded (RGB) label must '
                'be converted to class ids first')
        shape = results.get('ori_shape')
        if shape is not None and tuple(label.shape) != tuple(shape[:2]):
            raise ValueError(
                f'label map {path} is {label.shape[0]}x{label.shape[1]} '
                f'(h x w) but its image {results.get("img_path")} is '
                f'{shape[0]}x{shape[1]}')
        if label.dtype == np.uint8:
            counts = np.bincount(label.ravel(), minlength=256)
            ids = np.flatnonzero(counts)
        else:
            ids, counts_ = np.unique(label, return_counts=True)
            counts = dict(zip(ids.tolist(), counts_.tolist()))
        bad = [
            int(i) for i in ids
            if not (0 <= i < self.num_classes or i == self.ignore_index)
        ]
        if bad:
            pixels = ', '.join(f'{i}: {int(counts[i])}' for i in bad[:10])
            raise ValueError(
                f'label map {path} has ids {bad[:10]} outside the '
                f'{self.num_classes} classes (0..{self.num_classes - 1}) and '
                f'ignore_index {self.ignore_index} (pixels per id: '
                f'{pixels}); map them to a class or to {self.ignore_index} '
                'in the label files')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


@TRANSFORMS.register_module(scopes=('mmseg', ))
class CheckDepthMap(BaseTransform):
    """Check a depth map file before mmseg's ``LoadDepthAnnotation``.

    Design: a separate transform placed *before* ``LoadDepthAnnotation``,
    not after it and not a subclass of it. After it the stored dtype is
    gone (it converts to float32 and multiplies by
    ``depth_rescale_factor``), and a file it cannot decode fails inside it
    without the file name; a subclass would change the loader's ``type``
    that configs and their tests name. The price is a second decode of the
    file (about 1 ms for a 640x480 16-bit png).

    The file must decode, have the ``dtype`` that the loader's
    ``depth_rescale_factor`` assumes (the bundled NYU / Redwood pngs are
    uint16 millimetres, factor 1e-3), one channel, and the size of its
    image as read from disk (``ori_shape``, so it may follow a ``Resize``).

    **Required keys:** ``depth_map_path``; ``ori_shape`` and ``img_path``
    if present.

    Args:
        dtype (str): The expected stored dtype. Defaults to ``'uint16'``.
        decode_backend (str): As ``LoadDepthAnnotation``'s: ``'cv2'``
            (images) or ``'numpy'`` (``.npy``). Defaults to ``'cv2'``.
        backend_args (dict, optional): File backend arguments. Defaults to
            None.

    Raises:
        ValueError: Naming the depth file and what is wrong (cannot decode,
            dtype, channels, size vs its image).
    """

    def __init__(self,
                 dtype: str = 'uint16',
                 decode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f'CheckDepthMap: dtype must name a numpy dtype, '
                            f'got {dtype!r}') from None
        if decode_backend not in ('cv2', 'numpy'):
            raise ValueError(f'CheckDepthMap: decode_backend must be "cv2" '
                             f'or "numpy", got {decode_backend!r}')
        self.decode_backend = decode_backend
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        from mmseg.utils import datafrombytes
        path = results['depth_map_path']
        raw = fileio.get(path, backend_args=self.backend_args)
        try:
            depth = datafrombytes(raw, backend=self.decode_backend)
        except Exception:  # np.load on a broken file, ...
            depth = None
        if not isinstance(depth, np.ndarray):
            raise ValueError(f'depth map {path} ({len(raw)} bytes) cannot be '
                             'decoded: truncated or not an image')
        if depth.dtype != self.dtype:
            raise ValueError(
                f'depth map {path} is {depth.dtype}, expected {self.dtype} '
                '(the depth_rescale_factor of LoadDepthAnnotation assumes '
                'it)')
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[..., 0]
        if depth.ndim != 2:
            raise ValueError(f'depth map {path} has shape {depth.shape}: '
                             'expected one channel (h, w)')
        shape = results.get('ori_shape')
        if shape is not None and tuple(depth.shape) != tuple(shape[:2]):
            raise ValueError(
                f'depth map {path} is {depth.shape[0]}x{depth.shape[1]} '
                f'(h x w) but its image {results.get("img_path")} is '
                f'{shape[0]}x{shape[1]}')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(dtype={self.dtype.name!r}, '
                f'decode_backend={self.decode_backend!r})')
