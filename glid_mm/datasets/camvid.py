"""CamVid road-scene semantic segmentation for MMSegmentation."""
from mmseg.datasets import BaseSegDataset

from glid_mm.registry import DATASETS


@DATASETS.register_module(scopes=('mmseg', ))
class CamVidDataset(BaseSegDataset):
    """CamVid with the 11 classes of the SegNet benchmark split.

    The layout is the one of the bundled copy (``../shared/data/camvid``)::

        camvid/
        ├── images/{train,val}/0001TP_006690.jpg   RGB frames, 480x360
        └── labels/{train,val}/0001TP_006690.png   uint8 class ids

    Label maps store the class id (0..10, in the order of ``classes``) per
    pixel and 255 for void, which is mmseg's default ``ignore_index``; so the
    ids are used as they are (``reduce_zero_label=False``: id 0 is ``sky``, a
    real class). The palette is the one of the SegNet tutorial's CamVid.

    Args:
        img_suffix (str): Suffix of the images. Defaults to ``'.jpg'``.
        seg_map_suffix (str): Suffix of the label maps. Defaults to
            ``'.png'``.
        reduce_zero_label (bool): Must stay ``False``; ``True`` would turn
            ``sky`` into void and shift every other class id. Defaults to
            ``False``.
        **kwargs: Everything else of
            :class:`mmseg.datasets.BaseSegDataset` (``data_root``,
            ``data_prefix=dict(img_path=..., seg_map_path=...)``,
            ``pipeline``, ``indices``, ``ignore_index``, ...).

    Raises:
        ValueError: If ``reduce_zero_label`` is ``True``.
    """
    METAINFO = dict(
        classes=('sky', 'building', 'pole', 'road', 'pavement', 'tree',
                 'sign_symbol', 'fence', 'car', 'pedestrian', 'bicyclist'),
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128],
                 [60, 40, 222], [128, 128, 0], [192, 128, 128], [64, 64, 128],
                 [64, 0, 128], [64, 64, 0], [0, 128, 192]])

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        if reduce_zero_label:
            raise ValueError(
                'CamVidDataset: reduce_zero_label=True is wrong for CamVid, '
                'whose label 0 is the class "sky" (void is already stored '
                'as 255); got reduce_zero_label=True')
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=False,
            **kwargs)
