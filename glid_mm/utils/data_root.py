"""Data roots of the bundled datasets and a check with a clear error.

Dataset configs in ``configs/_base_/datasets/`` put their root under
``{{$GLID_MM_DATA:../shared/data}}``: the environment variable
``GLID_MM_DATA`` overrides the default, and so does ``--cfg-options
train_dataloader.dataset.data_root=...``. A relative root is taken from the
current working directory, as everywhere in OpenMMLab.
"""
import os.path as osp
from typing import Iterator, Tuple

DATA_ENV = 'GLID_MM_DATA'
DEFAULT_DATA_ROOT = '../shared/data'


def _iter_data_roots(cfg, prefix: str) -> Iterator[Tuple[str, str]]:
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            path = f'{prefix}.{key}' if prefix else key
            if key == 'data_root' and isinstance(value, str):
                yield path, value
            else:
                yield from _iter_data_roots(value, path)
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from _iter_data_roots(value, f'{prefix}[{i}]')


def check_data_roots(
    cfg,
    keys=('train_dataloader', 'val_dataloader', 'test_dataloader')) -> None:
    """Raise ``FileNotFoundError`` naming every missing ``data_root``.

    Args:
        cfg (Config | dict): A full runner config.
        keys (tuple[str]): Top-level entries to inspect.
    """
    missing = []
    for key in keys:
        node = cfg.get(key) if hasattr(cfg, 'get') else None
        if not node:
            continue
        for path, root in _iter_data_roots(node, key):
            if root and not osp.isdir(root):
                missing.append(f'{path} = {root!r} '
                               f'(absolute: {osp.abspath(root)})')
    if missing:
        raise FileNotFoundError(
            'data root not found:\n  - ' + '\n  - '.join(missing) +
            f'\nSet {DATA_ENV}=/path/to/data (the folder that holds coco128/, '
            'camvid/, ...), or pass --cfg-options '
            '<loader>.dataset.data_root=/path, or run from the project root '
            f'with the data at {DEFAULT_DATA_ROOT}.')
