"""Pre-flight checks of what a run reads, with errors that name the culprit.

``tools/train.py`` and ``tools/test.py`` (:mod:`glid_mm.utils.preflight`) run
them when they start, so that bad input fails in seconds with the file and
the offending entries instead of deep inside a dataloader worker, or not at
all (mmdet silently drops annotations it cannot use):

- :func:`check_annotations`: every ``.json`` ``ann_file`` of the
  train/val/test dataloaders (through ``ConcatDataset`` / ``RepeatDataset``
  wrappers and the dict-of-task loaders of GPPF configs) is valid JSON, and
  for COCO-style dataset types has its keys, no box of negative size, no
  category id missing from ``categories`` and keypoint arrays of the right
  length. Skip it with ``data_check = False`` in the config.
- :func:`check_tasks`: every task of a multi-task model has a dataloader
  and a sampling weight, and nothing else does.

Per-sample checks that need pixels (label ids, depth maps) are transforms:
:mod:`glid_mm.datasets.transforms.checks`; the ``load_from`` checkpoint is
checked against the built model in :mod:`glid_mm.utils.load_check`.
"""
import json
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.fileio import exists, get, join_path
from mmengine.utils import is_abs

#: the examples shown for each kind of problem
MAX_SHOWN = 5
LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# where a dataset config never nests another dataset
_NOT_DATASETS = ('pipeline', 'sampler', 'batch_sampler', 'collate_fn')


class AnnotationError(ValueError):
    """A malformed annotation file; the message names it and the entries."""


# ----------------------------------------------------------------------
# where the annotation files are
# ----------------------------------------------------------------------
def _iter_datasets(node, path: str, scope: Optional[str],
                   task_scopes: Dict[str, str]) -> Iterator[Tuple]:
    """Yield ``(config path, dataset cfg, scope)`` of every dataset with an
    ``ann_file`` (or ``bbox_file``) under ``node``."""
    if isinstance(node, dict):
        scope = node.get('_scope_', scope)
        if node.get('ann_file') or node.get('bbox_file'):
            yield path, node, scope
        for key, value in node.items():
            if key in _NOT_DATASETS:
                continue
            yield from _iter_datasets(value, f'{path}.{key}',
                                      task_scopes.get(key, scope), {})
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _iter_datasets(value, f'{path}[{i}]', scope, {})


def _full_path(dataset: dict, key: str) -> str:
    """``data_root`` + ``ann_file`` as mmengine's ``BaseDataset`` joins it."""
    name, root = dataset[key], dataset.get('data_root')
    return name if is_abs(name) or not root else join_path(root, name)


def _dataset_class(type_, scope: Optional[str]):
    """The registered class of a dataset ``type`` (None if not found)."""
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    from glid_mm.registry import _toolbox_registries
    registries = _toolbox_registries('DATASETS')
    order = [scope] if scope in registries else []
    order += [s for s in registries if s not in order]
    for name in order:
        cls = registries[name].get(type_)
        if cls is not None:
            return cls
    return None


def _coco_style(cls) -> Tuple[bool, bool, Optional[int]]:
    """``(coco_style, panoptic, metainfo keypoint count)`` of a class.

    COCO-style: mmdet's ``CocoDataset`` family (pycocotools) and mmpose's
    datasets that keep ``BaseCocoStyleDataset``'s loader (xtcocotools);
    MPII-like mmpose datasets read their own json layouts.
    """
    if cls is None:
        return False, False, None
    from glid_mm.registry import available
    if available('mmdet'):
        from mmdet.datasets import CocoDataset, CocoPanopticDataset
        if issubclass(cls, CocoDataset):
            return True, issubclass(cls, CocoPanopticDataset), None
    if available('mmpose'):
        from mmpose.datasets.datasets.base import BaseCocoStyleDataset
        if issubclass(cls, BaseCocoStyleDataset) and cls._load_annotations \
                is BaseCocoStyleDataset._load_annotations:
            return True, False, -1  # -1: read from the metainfo
    return False, False, None


def _pose_num_keypoints(cls, dataset: dict) -> Optional[int]:
    try:
        meta = dataset.get('metainfo')
        meta = cls._load_metainfo(dict(meta) if meta else None)
        return meta.get('num_keypoints')
    except Exception:  # an unreadable metainfo fails in the dataset itself
        return None


# ----------------------------------------------------------------------
# one file
# ----------------------------------------------------------------------
def load_json(path: str, backend_args: Optional[dict] = None):
    """``json.loads`` of a file, failing with its name and position."""
    if not exists(path, backend_args=backend_args):
        raise FileNotFoundError(f'annotation file not found: {path}')
    raw = get(path, backend_args=backend_args)
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            f'{path}: not a JSON file: byte {raw[exc.start]:#04x} at offset '
            f'{exc.start} is not UTF-8 text') from None
    del raw  # COCO train2017: 450 MB
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        near = text[max(0, exc.pos - 30):exc.pos + 30].replace('\n', ' ')
        empty = ' (the file is empty)' if not text.strip() else ''
        raise AnnotationError(
            f'{path}: not valid JSON{empty}: {exc.msg}, line {exc.lineno} '
            f'column {exc.colno} (char {exc.pos}), near {near!r}') from None


class _Problems:
    """Problems of one file by kind: a count and a few examples each."""

    def __init__(self) -> None:
        self.kinds: Dict[str, List[str]] = {}
        self.counts: Dict[str, int] = {}
        self.notes: Dict[str, str] = {}

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        shown = self.kinds.setdefault(kind, [])
        if len(shown) < MAX_SHOWN:
            shown.append(example)

    def raise_if_any(self, path: str) -> None:
        if not self.counts:
            return
        total = sum(self.counts.values())
        lines = [
            f'{path}: {total} malformed '
            f'{"entry" if total == 1 else "entries"}'
        ]
        for kind, examples in self.kinds.items():
            more = self.counts[kind] - len(examples)
            lines.append(f'  - {self.counts[kind]} {kind}: ' +
                         '; '.join(examples) +
                         (f'; ... and {more} more' if more else '') +
                         self.notes.get(kind, ''))
        raise AnnotationError('\n'.join(lines))


_NEG = 'boxes of negative width/height'
_CAT = 'category ids not in categories'


def _check_box(problems: _Problems, bbox, where) -> None:
    """``where()`` names the entry; called only for a problem."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(
            isinstance(v, (int, float)) for v in bbox):
        problems.add('boxes that are not [x, y, w, h]',
                     f'{where()}: bbox {bbox!r}')
    elif bbox[2] < 0 or bbox[3] < 0:
        problems.add(_NEG,
                     f'{where()}: bbox {bbox!r} (w={bbox[2]}, h={bbox[3]})')


def _check_segments(problems: _Problems, ann: dict, cats: dict) -> None:
    """A panoptic annotation: its ``segments_info``."""
    image = ann.get('image_id')
    segments = ann.get('segments_info')
    if not isinstance(segments, list):
        problems.add('panoptic annotations without segments_info',
                     f'image id {image} (keys {sorted(ann)})')
        return
    for seg in segments:

        def where():
            return f'segment id {seg.get("id")} of image id {image}'

        if seg.get('category_id') not in cats:
            problems.add(
                _CAT, f'{where()}: category_id '
                f'{seg.get("category_id")}')
        if 'bbox' in seg:
            _check_box(problems, seg['bbox'], where)


def _check_instance(problems: _Problems, i: int, ann: dict, cats: dict,
                    num_keypoints: Optional[int]) -> None:
    """An instance annotation: category, box, keypoints."""

    def where():
        return (f'annotation id {ann.get("id", f"#{i}")} '
                f'(image id {ann.get("image_id")})')

    cat = ann.get('category_id')
    if cat not in cats:
        problems.add(_CAT, f'{where()}: category_id {cat}')
    if 'bbox' not in ann:
        problems.add('annotations without a bbox', where())
    else:
        _check_box(problems, ann['bbox'], where)
    kpts = ann.get('keypoints')
    if kpts is None:
        return
    size = len(kpts) if isinstance(kpts, list) else -1
    allowed = {3 * k for k in (cats.get(cat), num_keypoints) if k}
    if size % 3 or (allowed and size not in allowed):
        want = (' or '.join(str(a) for a in sorted(allowed)) +
                ' (3 per keypoint: x, y, visibility)'
                if allowed else 'a multiple of 3 (x, y, visibility)')
        problems.add('keypoint arrays of the wrong length',
                     f'{where()}: {size} values, expected {want}')


def check_coco(data,
               path: str,
               panoptic: bool = False,
               num_keypoints: Optional[int] = None) -> None:
    """Check a loaded COCO-style annotation dict; raise naming ``path``.

    Boxes of zero size pass: mmdet drops boxes under 1 pixel by design.
    Keypoint arrays must hold ``3 *`` the number of names their category
    lists or ``3 * num_keypoints`` (mmpose's merged whole-body files list
    17 names for 133 keypoints).

    Args:
        data: The loaded json.
        path (str): The file, for the messages.
        panoptic (bool): COCO panoptic layout (``segments_info`` per
            annotation instead of boxes). Defaults to False.
        num_keypoints (int, optional): Keypoints per instance by the
            dataset's metainfo (mmpose). Defaults to None.

    Raises:
        AnnotationError: Naming the file, counts per kind of problem and up
            to :data:`MAX_SHOWN` examples each (annotation id, image id,
            value).
    """
    if not isinstance(data, dict):
        raise AnnotationError(
            f'{path}: a COCO annotation file is a JSON object with keys '
            f'images, annotations, categories; this one is a '
            f'{type(data).__name__}')
    required = ('images', 'annotations', 'categories')
    missing = [k for k in required if not isinstance(data.get(k), list)]
    if missing:
        raise AnnotationError(
            f'{path}: missing COCO key(s) {missing} (each a list); the file '
            f'has keys {sorted(data)}')
    problems = _Problems()
    cats = {}
    for cat in data['categories']:
        if not isinstance(cat, dict) or 'id' not in cat:
            problems.add('categories without an id', repr(cat)[:80])
        else:
            cats[cat['id']] = len(cat.get('keypoints') or ())
    for i, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict):
            problems.add('annotations that are not objects',
                         f'annotations[{i}] = {ann!r}'[:80])
        elif panoptic:
            _check_segments(problems, ann, cats)
        else:
            _check_instance(problems, i, ann, cats, num_keypoints)
    known = sorted(cats)
    problems.notes[_CAT] = (f' (categories has ids {known[:20]}'
                            f'{" ..." if len(known) > 20 else ""})')
    problems.raise_if_any(path)


# ----------------------------------------------------------------------
# a whole config
# ----------------------------------------------------------------------
def annotation_files(cfg,
                     keys=LOADER_KEYS
                     ) -> List[Tuple[str, str, dict, Optional[str]]]:
    """``(config path, file, dataset cfg, scope)`` of every ``.json``
    ``ann_file`` / ``bbox_file`` of the dataloaders ``keys``."""
    model_tasks = (cfg.get('model') or {}).get('tasks')
    model_tasks = model_tasks if isinstance(model_tasks, dict) else {}
    task_scopes = {
        name: task.get('_scope_')
        for name, task in model_tasks.items() if isinstance(task, dict)
    }
    found = []
    for key in keys:
        node = cfg.get(key)
        if not node:
            continue
        scopes = task_scopes if 'dataset' not in node else {}
        for path, dataset, scope in _iter_datasets(node, key,
                                                   cfg.get('default_scope'),
                                                   scopes):
            for field in ('ann_file', 'bbox_file'):
                name = dataset.get(field)
                if isinstance(name, str) and name.endswith('.json'):
                    found.append(
                        (f'{path}.{field}', _full_path(dataset,
                                                       field), dataset, scope))
    return found


def check_annotations(cfg, keys=LOADER_KEYS) -> int:
    """Check the ``.json`` annotation files of a config's dataloaders.

    Each file is read once (a file shared by train and val too), with O(n)
    loops over its entries: COCO train2017's 450 MB json takes about as
    long as pycocotools' own load. ``data_check = False`` in the config
    skips everything.

    Args:
        cfg (Config | dict): A full runner config.
        keys (tuple[str]): The dataloaders to inspect.

    Returns:
        int: The number of files checked.

    Raises:
        FileNotFoundError: An ``ann_file`` that does not exist.
        AnnotationError: Invalid JSON (with line and column), missing COCO
            keys, boxes of negative width/height, category ids missing from
            ``categories``, keypoint arrays of the wrong length; each names
            the file, the annotation and image ids and the values.
    """
    if cfg.get('data_check', True) is False:
        return 0
    done = set()
    for where, path, dataset, scope in annotation_files(cfg, keys):
        if path in done:
            continue
        done.add(path)
        try:
            data = load_json(path, dataset.get('backend_args'))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f'{where}: {exc}') from None
        if where.endswith('bbox_file'):
            continue  # detections: a list; validity is all that is checked
        cls = _dataset_class(dataset.get('type'), scope)
        coco, panoptic, kpts = _coco_style(cls)
        if coco:
            if kpts == -1:
                kpts = _pose_num_keypoints(cls, dataset)
            check_coco(data, path, panoptic, kpts)
        del data
    return len(done)


def check_tasks(cfg) -> None:
    """Every task of a multi-task model has data and a weight, and only they.

    For configs whose ``model.tasks`` is a dict of task models and whose
    ``train_dataloader`` is a dict task -> dataloader (GPPF, SIMT): a task
    without a dataloader would never be trained, silently.

    Raises:
        KeyError: Naming the tasks missing from either side.
    """
    tasks = (cfg.get('model') or {}).get('tasks')
    loaders = cfg.get('train_dataloader')
    if not isinstance(tasks, dict) or not isinstance(loaders, dict) or \
            'dataset' in loaders:
        return
    weights = (cfg.get('train_cfg') or {}).get('task_weights')
    named = dict(train_dataloader=sorted(loaders))
    if isinstance(weights, dict):
        named['train_cfg.task_weights'] = sorted(weights)
    errors = []
    for where, names in named.items():
        no_entry = sorted(set(tasks) - set(names))
        extra = sorted(set(names) - set(tasks))
        if no_entry:
            errors.append(f'model.tasks {no_entry} have no {where} entry '
                          f'({where} has {names})')
        if extra:
            errors.append(f'{where} names {extra}, which model.tasks '
                          f'{sorted(tasks)} does not have')
    if errors:
        raise KeyError('multi-task config: ' + '; '.join(errors) +
                       '. Give every task a dataloader and a weight, or drop '
                       'it from model.tasks.')
