"""Checks that run before training or testing starts, failing with the
file, key or value at fault (``tools/train.py``, ``tools/test.py``).

- :func:`check_inputs`: data roots
  (:func:`~glid_mm.utils.data_root.check_data_roots`), annotation files and
  multi-task names (:mod:`glid_mm.utils.data_checks`; opt out with
  ``data_check = False``);
- :func:`check_built_runner`: the training set is not empty and the
  ``load_from`` checkpoint fits the model
  (:func:`glid_mm.utils.load_check.check_load_from`; opt out with
  ``load_from_check = False``);
(:func:`glid_mm.engine.runner.run_checked` builds the runner and runs these
checks and the action.)
"""
from typing import Sequence

from glid_mm.utils.data_checks import check_annotations, check_tasks
from glid_mm.utils.data_root import check_data_roots
from glid_mm.utils.gppf_task_configs import resolve_task_configs


def check_inputs(cfg, keys: Sequence[str], tasks: bool = True) -> None:
    """Data roots and annotation files of the dataloaders ``keys``; with
    ``tasks``, the task names of a multi-task model (training). Task
    configs named by path (GPPF: ``dict(from_config=...)``) are read and
    checked as the components will build them."""
    cfg = resolve_task_configs(cfg)
    check_data_roots(cfg, keys=keys)
    check_annotations(cfg, keys=keys)
    if tasks:
        check_tasks(cfg)


def check_built_runner(runner, cfg, train: bool = True) -> None:
    """Checks that need the built model or datasets (before any step).

    The training set must not be empty (for GPPF: none of the task sets),
    and ``load_from`` must fit the model (:func:`check_load_from`; the
    per-part report goes to the log). Building ``runner.train_loop`` here
    is what ``runner.train()`` does first anyway.
    """
    from mmengine.model import is_model_wrapper
    loader = getattr(runner.train_loop, 'dataloader', None) if train else None
    if loader is not None:
        loaders = getattr(loader, 'loaders', None) or dict(train=loader)
        for task, task_loader in loaders.items():
            dataset = getattr(task_loader, 'dataset', None)
            if dataset is not None and hasattr(dataset, '__len__') and \
                    len(dataset) == 0:
                where = 'train_dataloader' + ('' if task == 'train' else
                                              f'.{task}')
                paths = ', '.join(f'{k}={getattr(dataset, k, None)!r}'
                                  for k in ('data_root', 'ann_file',
                                            'data_prefix'))
                raise ValueError(
                    f'{where}: the dataset {type(dataset).__name__} has no '
                    f'samples ({paths}); check the paths, and filter_cfg, '
                    'which may drop every image')
    if cfg.get('resume') or not cfg.get('load_from') or \
            cfg.get('load_from_check', True) is False:
        return
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    from glid_mm.utils.load_check import check_load_from
    text = check_load_from(model, cfg.load_from)
    runner.logger.info(f'load_from={cfg.load_from} vs the model '
                       f'(checkpoint tensors by model part):\n{text}')
