"""All LiT-decoder tasks in one dataset, each example tagged with its task.

Sec. 4.2 / 5.3 of "A Study of Autoregressive Decoders for Multi-Tasking in
Computer Vision": the datasets of all tasks feed one loader; every example
carries its task name (the prompt token), its task category (for the
category-conditioned variant of Table 1), an optional question and the text
label. How tasks are mixed is the sampler's job
(:class:`LiTTaskMixSampler`, :class:`LiTTaskBatchSampler`).
"""
from collections import Counter
from typing import List, Optional, Tuple

import numpy as np
from torch.utils.data import Dataset

from glid_mm.registry import DATASETS, build_nested

TARGETS = ('class_name', 'caption', 'vqa', 'text')


@DATASETS.register_module(scopes=('mmpretrain', ))
class LiTMultiTaskDataset(Dataset):
    """Concatenation of per-task datasets with text targets.

    Args:
        tasks (dict): ``{task_name: dict(dataset=..., category=...,
            target=...)}``. ``dataset`` is an mmpretrain dataset config (or
            object) whose pipeline ends with ``PackInputs``; ``category`` is
            the task type used by category conditioning (e.g. ``'cls'``,
            ``'cap'``, ``'qa'``, ``'ocr'``, ``'count'``); ``target`` says
            where the text comes from: ``'class_name'`` (``gt_label`` ->
            ``metainfo['classes']``), ``'caption'`` (``gt_caption``),
            ``'vqa'`` (``question`` + ``gt_answer``; the most-voted answer is
            the training target, all answers are references) or ``'text'``
            (``gt_text`` of the derived datasets).
        max_remembered_labels (int): Tasks with at most this many distinct
            training targets have them remembered for class scoring.
            Defaults to 1000.

    Each item is the inner dataset's packed dict with these fields added to
    its ``data_samples``: ``task``, ``task_category``, ``question`` (str or
    None), ``gt_text`` (training target), ``gt_texts`` (all references,
    the target first) and ``gt_text_weights`` (VQA: the share of annotators
    who gave each reference; else None);
    ``gt_label`` / ``gt_score`` are removed (the text replaces them, and
    mixed batches must carry the same fields).
    """

    def __init__(self, tasks: dict, max_remembered_labels: int = 1000) -> None:
        if not isinstance(tasks, dict) or not tasks:
            raise ValueError('tasks must be a non-empty dict {name: dict('
                             f'dataset, category, target)}}, got {tasks!r}')
        self.datasets, self.categories, self.targets = {}, {}, {}
        for name, cfg in tasks.items():
            missing = {'dataset', 'category', 'target'} - set(cfg)
            if missing:
                raise ValueError(f'tasks[{name!r}] misses {sorted(missing)}')
            if cfg['target'] not in TARGETS:
                raise ValueError(f'tasks[{name!r}].target={cfg["target"]!r} '
                                 f'is not one of {TARGETS}')
            extra = set(cfg) - {'dataset', 'category', 'target'}
            if extra:
                raise ValueError(f'tasks[{name!r}] has unknown keys '
                                 f'{sorted(extra)}')
            ds = cfg['dataset']
            self.datasets[name] = build_nested(
                ds, 'DATASETS', home='mmpretrain')
            self.categories[name] = cfg['category']
            self.targets[name] = cfg['target']
        self.max_remembered_labels = max_remembered_labels
        self.tasks = list(self.datasets)
        starts = np.cumsum([0] + [len(d) for d in self.datasets.values()])
        self.task_ranges = {
            t: (int(starts[i]), int(starts[i + 1]))
            for i, t in enumerate(self.tasks)
        }
        self._starts = starts

    @property
    def metainfo(self) -> dict:
        return dict(tasks=list(self.tasks), categories=dict(self.categories))

    def __len__(self) -> int:
        return int(self._starts[-1])

    def locate(self, idx: int) -> Tuple[str, int]:
        """``(task, index inside that task's dataset)`` of global ``idx``."""
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)}')
        i = int(np.searchsorted(self._starts, idx, side='right')) - 1
        return self.tasks[i], idx - int(self._starts[i])

    def task_of(self, idx: int) -> str:
        return self.locate(idx)[0]

    def image_keys(self, task: str) -> List[str]:
        """Image path of every example of ``task`` (groups questions of one
        image for the *concat images* mixing strategy)."""
        ds = self.datasets[task]
        return [ds.get_data_info(i)['img_path'] for i in range(len(ds))]

    def get_text(self, task: str,
                 local: int) -> Tuple[Optional[str], str, List[str]]:
        """``(question, target, references)`` of one example."""
        ds = self.datasets[task]
        info = ds.get_data_info(local)
        kind = self.targets[task]
        question = None
        if kind == 'class_name':
            label = int(np.asarray(info['gt_label']).reshape(-1)[0])
            refs = [ds.metainfo['classes'][label]]
        elif kind == 'caption':
            refs = _as_list(info['gt_caption'])
        elif kind == 'text':
            refs = _as_list(info['gt_text'])
        else:
            question = info['question']
            refs, _ = self._vqa_answers(info)
        if not refs:
            raise ValueError(f'task {task!r} example {local} has no target')
        return question, refs[0], refs

    @staticmethod
    def _vqa_answers(info: dict) -> Tuple[List[str], Optional[List[float]]]:
        """Answers with the most-voted first, and their weights (the share
        of annotators who gave each, mmpretrain's ``gt_answer_weight``)."""
        refs = _as_list(info['gt_answer'])
        weights = info.get('gt_answer_weight')
        if weights is None or len(weights) != len(refs):
            return refs, None
        weights = [float(w) for w in weights]
        best = int(np.argmax(weights))
        order = [best] + [i for i in range(len(refs)) if i != best]
        return [refs[i] for i in order], [weights[i] for i in order]

    def get_text_weights(self, task: str, local: int) -> Optional[List[float]]:
        """Annotator shares of the references of a VQA example (same order
        as :meth:`get_text`'s references), else None."""
        if self.targets[task] != 'vqa':
            return None
        info = self.datasets[task].get_data_info(local)
        return self._vqa_answers(info)[1]

    def get_text_corpus(self) -> dict:
        """Strings to train the tokenizer on: ``dict(texts, tasks, labels)``.

        ``texts`` holds every training target and question (class names once
        per class); ``labels`` the candidate targets of tasks with at most
        ``max_remembered_labels`` distinct ones (for class scoring).
        """
        texts, labels = [], {}
        for task, ds in self.datasets.items():
            if self.targets[task] == 'class_name':
                names = list(ds.metainfo['classes'])
                texts += names
                seen = Counter(names)
            else:
                seen = Counter()
                for i in range(len(ds)):
                    question, target, _ = self.get_text(task, i)
                    texts.append(target)
                    seen[target] += 1
                    if question:
                        texts.append(question)
            if len(seen) <= self.max_remembered_labels:
                labels[task] = sorted(seen)
        return dict(texts=texts, tasks=dict(self.categories), labels=labels)

    def __getitem__(self, idx: int) -> dict:
        task, local = self.locate(idx)
        data = self.datasets[task][local]
        sample = data['data_samples']
        # a train-mode BaseDataset may swap in another index when its
        # pipeline drops an example; PackInputs keeps the one it used
        local = int(sample.get('sample_idx', local))
        question, target, refs = self.get_text(task, local)
        for key in ('gt_label', 'gt_score'):  # replaced by the text target
            if key in sample:
                delattr(sample, key)
        sample.set_field(task, 'task', field_type='metainfo')
        sample.set_field(
            self.categories[task], 'task_category', field_type='metainfo')
        sample.set_field(question, 'question', field_type='metainfo')
        sample.set_field(target, 'gt_text', field_type='metainfo')
        sample.set_field(refs, 'gt_texts', field_type='metainfo')
        sample.set_field(
            self.get_text_weights(task, local),
            'gt_text_weights',
            field_type='metainfo')
        return data


def _as_list(value) -> List[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
