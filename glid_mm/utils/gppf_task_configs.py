"""Single-task configs named by path inside a GPPF multi-task config.

A GPPF multi-task config (``configs/gppf/*.py``) trains standard
single-task configs (``configs/gppf/tasks/*.py``) together. mmengine does
not let two ``_base_`` files define the same key (every task config has a
``model`` and a ``train_dataloader``) and configs hold plain data, so the
multi-task config names each task config by path and the component that
needs a part of it receives that part, read from the file when the
runner is built::

    runner_type = 'TaskConfigRunner'  # reads the task configs, once
    task_configs = dict(det='{{ fileDirname }}/tasks/mask-rcnn_....py', ...)
    model = dict(type='GPPFMultiTaskModel', backbone=...,
                 tasks=dict(det=dict(from_config=task_configs['det'])))
    train_dataloader = dict(det=dict(from_config=task_configs['det']))
    val_dataloader = dict(
        det=dict(from_config=task_configs['det'], dataset=dict(indices=8)))
    val_evaluator = dict(det=dict(from_config=task_configs['det']))

A reference is a dict with the key ``from_config`` (the task config's
path); which part of that config it stands for follows from where it is
(and which component builds it):

=====================================  ==================================
reference at                           part of the task config (built by)
=====================================  ==================================
``model.tasks.<task>``                 ``model`` without ``backbone``,
                                       ``_scope_`` = its
                                       ``default_scope``, and its
                                       top-level ``data_preprocessor``
                                       when the model has none
                                       (mmpretrain keeps it there)
                                       (:class:`GPPFMultiTaskModel`)
``train_dataloader.<task>``            ``train_dataloader``
                                       (:class:`SIMTTrainLoop`)
``val_dataloader.<task>`` /            ``val_dataloader`` /
``val_evaluator.<task>``               ``val_evaluator``
                                       (:class:`MultiTaskValLoop`)
``test_dataloader.<task>`` /           ``test_dataloader`` /
``test_evaluator.<task>``              ``test_evaluator``
                                       (:class:`MultiTaskTestLoop`)
=====================================  ==================================

The reference's other keys are merged into that part as ``--cfg-options``
are merged into a config (nested dicts key by key, ``_delete_=True``
replaces a dict, dotted keys reach down: ``'test_cfg.rcnn.score_thr'``).

The files are read once, when the runner is built: the config sets
``runner_type = 'TaskConfigRunner'``
(:class:`~glid_mm.engine.runner.TaskConfigRunner`), whose ``from_cfg``
calls :func:`resolve_task_configs`; ``tools/train.py`` and ``tools/test.py``
resolve right after loading the config. The components then receive plain
dicts and refuse a reference left unresolved
(:func:`refuse_task_config_ref`). Environment variables in a task config
(``{{$GLID_MM_DATA:../shared/data}}``) are read then, and a relative path
is relative to the working directory: write ``{{ fileDirname }}/...``.
"""
import copy
import os.path as osp
from typing import Any, Dict, Optional, Union

from mmengine.config import Config, ConfigDict

FROM_CONFIG = 'from_config'

# config key of a per-task dict -> part of the task config it refers to
TASK_PARTS = dict(
    train_dataloader='train_dataloader',
    val_dataloader='val_dataloader',
    test_dataloader='test_dataloader',
    val_evaluator='val_evaluator',
    test_evaluator='test_evaluator')


def is_task_config_ref(cfg: Any) -> bool:
    """Whether ``cfg`` is ``dict(from_config=<path>, ...)``."""
    return isinstance(cfg, dict) and FROM_CONFIG in cfg


def refuse_task_config_ref(cfg: Any, where: str) -> None:
    """Components (the multi-task model, the SIMT and multi-task loops)
    receive plain dicts: references are resolved once, when the runner is
    built (:class:`~glid_mm.engine.runner.TaskConfigRunner`). A reference
    that reaches a component fails here, naming the key and the fix."""
    if is_task_config_ref(cfg):
        raise TypeError(
            f'{where} is a task-config reference ({FROM_CONFIG}='
            f'{cfg[FROM_CONFIG]!r}) that nothing resolved: references are '
            "read once, when the runner is built; add runner_type = "
            "'TaskConfigRunner' to the config (tools/train.py, tools/test.py "
            "and the toolboxes' own train.py honour it), or pass the config "
            'through glid_mm.utils.gppf_task_configs.resolve_task_configs '
            'before building from it')


def _plain(value: Any) -> Any:
    """``ConfigDict`` -> ``dict`` (also inside lists and tuples), copied."""
    if isinstance(value, ConfigDict):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return copy.deepcopy(value)


def _split(ref: dict, where: str):
    ref = _plain(ref)
    path = ref.pop(FROM_CONFIG)
    if not isinstance(path, str) or not path:
        raise TypeError(f'{where}.{FROM_CONFIG} must be the path of a task '
                        f'config, got {path!r}')
    return path, ref


def _load(path: str,
          where: str,
          cache: Optional[Dict[str, Config]] = None) -> Config:
    """``Config.fromfile(path)``; with ``cache`` (one
    :func:`resolve_task_configs` call), each file is read once. A GPPF
    config names each task config five times or more (model, train / val /
    test dataloader, evaluators), and reading one whose ``_base_`` is
    ``'mmdet::...'`` costs mmengine about half a second (it parses the
    toolbox's metafiles each time)."""
    key = osp.abspath(path)
    if cache is not None and key in cache:
        return cache[key]
    try:
        cfg = Config.fromfile(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f'{where}.{FROM_CONFIG}: task config not found: {path} (a '
            f'relative path is read from the working directory; write '
            f'"{{{{ fileDirname }}}}/..." in the config)') from exc
    if cache is not None:
        cache[key] = cfg
    return cfg


def _merge(part: Any, overrides: dict) -> Any:
    if not overrides:
        return part
    merged = Config(dict(part=part))
    merged.merge_from_dict({
        f'part.{key}': value
        for key, value in overrides.items()
    })
    return _plain(merged['part'])


def load_task_part(ref: dict,
                   part: str,
                   where: Optional[str] = None,
                   cache: Optional[Dict[str, Config]] = None) -> Any:
    """The ``part`` (``'train_dataloader'``, ``'val_evaluator'`` ...) of the
    task config that ``ref`` names, with the reference's other keys merged
    in.

    Args:
        ref (dict): ``dict(from_config=<path>, **overrides)``.
        part (str): A top-level key of the task config.
        where (str, optional): Where ``ref`` is, for error messages.
        cache (dict, optional): Task configs already read, by absolute
            path (filled in here; the parts returned are copies).

    Returns:
        dict | list: A copy of the part, plain dicts.

    Raises:
        KeyError: The task config has no (or a None) ``part``.
    """
    where = where or part
    path, overrides = _split(ref, where)
    task_cfg = _load(path, where, cache)
    if task_cfg.get(part) is None:
        raise KeyError(f'{where}: the task config {path} has no {part}; '
                       f'write the {part} out instead of referring to it')
    return _merge(_plain(task_cfg[part]), overrides)


def single_task_model(task_cfg: Config) -> dict:
    """The model a toolbox's runner builds from a single-task config: its
    ``model`` (a plain dict), ``_scope_`` its ``default_scope`` and its
    top-level ``data_preprocessor`` where the model has none (as
    mmengine's ``Runner.build_model`` adds it; mmpretrain keeps it
    there)."""
    model = _plain(task_cfg.model)
    if task_cfg.get('default_scope') is not None:
        model['_scope_'] = task_cfg.default_scope
    if task_cfg.get('data_preprocessor'):
        model.setdefault('data_preprocessor',
                         _plain(task_cfg.data_preprocessor))
    return model


def load_task_model(ref: dict,
                    where: str = 'model.tasks',
                    cache: Optional[Dict[str, Config]] = None) -> dict:
    """The task model of a GPPF task given by reference (see the module
    docstring): :func:`single_task_model` of the task config without
    ``backbone`` (every task shares the multi-task model's), then the
    reference's other keys merged in (``cache``: as in
    :func:`load_task_part`)."""
    path, overrides = _split(ref, where)
    task_cfg = _load(path, where, cache)
    if task_cfg.get('model') is None:
        raise KeyError(f'{where}: the task config {path} has no model')
    model = single_task_model(task_cfg)
    model.pop('backbone', None)
    return _merge(model, overrides)


def resolve_task_configs(cfg: Union[Config, dict]) -> Union[Config, dict]:
    """``cfg`` with every task-config reference of ``model.tasks`` and of
    the per-task dataloaders / evaluators replaced by what the components
    build from it. ``cfg`` itself when it has none (nothing is copied);
    otherwise a copy (``cfg`` is left as it is). Each task config file is
    read once."""
    found = []
    tasks = (cfg.get('model') or {}).get('tasks') if isinstance(
        cfg.get('model'), dict) else None
    if isinstance(tasks, dict):
        found += [('model.tasks', name) for name, task in tasks.items()
                  if is_task_config_ref(task)]
    for key in TASK_PARTS:
        node = cfg.get(key)
        if isinstance(node, dict):
            found += [(key, name) for name, value in node.items()
                      if is_task_config_ref(value)]
    if not found:
        return cfg
    cfg = copy.deepcopy(cfg)
    cache: Dict[str, Config] = {}
    for key, name in found:
        where = f'{key}.{name}'
        node = cfg['model']['tasks'] if key == 'model.tasks' else cfg[key]
        if not is_task_config_ref(node[name]):
            continue  # one dict under two keys (test_dataloader = val_...)
        if key == 'model.tasks':
            node[name] = load_task_model(node[name], where, cache)
        else:
            node[name] = load_task_part(node[name], TASK_PARTS[key], where,
                                        cache)
    return cfg
