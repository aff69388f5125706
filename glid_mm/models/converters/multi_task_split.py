"""Split a multi-task checkpoint into single-task checkpoints (issue 23).

A :class:`~glid_mm.models.algorithms.GPPFMultiTaskModel` state dict holds
the shared parts once, under their single-task names (``backbone.*``, and
with ``shared_parts`` for example ``neck.*``, ``decoder.layers.*``), and
each task's own parts under ``tasks.<task>.`` (heads, queries, anything
not shared). The single-task model of a task is therefore

- every key that is not under ``tasks.`` (the shared parts), as it is;
- ``tasks.<task>.X`` -> ``X``;
- other tasks' keys dropped.

This is what the task's own single-task config (the ``from_config`` file
of the generalist) loads without missing keys, so each toolbox's own
``tools/test.py`` evaluates it. A lego backbone (GPPF) is not a
single-task backbone: extract its path first
(:func:`~glid_mm.models.converters.extract_static_backbone`).
"""
from collections import OrderedDict
from typing import Dict, List

import torch

TASKS_PREFIX = 'tasks.'


def multi_task_names(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """The task names of a multi-task state dict, in key order."""
    names = []
    for key in state_dict:
        if key.startswith(TASKS_PREFIX):
            name = key[len(TASKS_PREFIX):].split('.', 1)[0]
            if name not in names:
                names.append(name)
    return names


def split_multi_task(state_dict: Dict[str, torch.Tensor],
                     task: str) -> 'OrderedDict[str, torch.Tensor]':
    """The single-task state dict of ``task`` (see the module docstring).

    Raises:
        KeyError: ``state_dict`` has no ``tasks.*`` key (not a multi-task
            checkpoint) or no key of ``task`` (the message lists the
            tasks it has).
    """
    tasks = multi_task_names(state_dict)
    if not tasks:
        raise KeyError(
            f'not a multi-task state dict: no key starts with '
            f'{TASKS_PREFIX!r} (first keys: {list(state_dict)[:5]})')
    if task not in tasks:
        raise KeyError(f'task {task!r} is not in this checkpoint; its tasks '
                       f'are {tasks}')
    own = f'{TASKS_PREFIX}{task}.'
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(own):
            out[key[len(own):]] = value
        elif not key.startswith(TASKS_PREFIX):
            out[key] = value
    return out
