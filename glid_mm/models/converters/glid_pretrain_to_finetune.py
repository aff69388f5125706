"""GLID pre-training checkpoint -> initialisation of a fine-tuning model.

GLID keeps the pre-trained decoder when fine-tuning and replaces only the
top linear head (Sec. 3.2, Sec. 4); Table 4 compares loading the backbone
only, backbone + Bi-FPN, and everything. The pre-training model and every
GLID fine-tuning model share the names ``backbone.*``, ``neck.*`` and
``decoder.*`` (with ``decoder.queries.*``), so conversion only drops the
pre-training head and the pre-training-only mask tokens, and restricts the
rest to the chosen parts.
"""
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch.nn as nn

#: what Table 4's three rows load
MODES = {
    'backbone': ('backbone', ),
    'backbone+neck': ('backbone', 'neck'),
    'all': ('backbone', 'neck', 'decoder', 'queries'),
}
#: pre-training only: the head (patch pixels), the [M] mask tokens and the
#: masked-position embeddings of the visible-token encoder's pyramid
PRETRAIN_ONLY = ('head.', 'backbone.mask_token', 'pyramid_mask_tokens.',
                 'decoder.queries.mask_token')
PARTS = ('backbone', 'neck', 'decoder', 'queries', 'head', 'other')


def part_of(key: str) -> str:
    """The model part a state-dict key belongs to."""
    if key.startswith('decoder.queries.'):
        return 'queries'
    first = key.split('.', 1)[0]
    if first in ('backbone', 'neck', 'decoder'):
        return first
    if first == 'head' or first.endswith('_head'):
        return 'head'
    return 'other'


def convert_pretrain_to_finetune(state_dict: Dict, mode: str = 'all'
                                 ) -> Tuple['OrderedDict', List[str]]:
    """Return ``(kept_state, dropped_keys)``.

    Args:
        state_dict (dict): The pre-training model's ``state_dict`` (the
            ``state_dict`` entry of an mmengine checkpoint).
        mode (str): ``'backbone'``, ``'backbone+neck'`` or ``'all'``.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {sorted(MODES)}, got {mode!r}')
    parts = MODES[mode]
    if not any(k.startswith('decoder.queries.') or k.startswith('head.')
               for k in state_dict):
        raise KeyError('this does not look like a GLID pre-training '
                       'checkpoint: no decoder.queries.* or head.* keys '
                       f'(first keys: {list(state_dict)[:5]})')
    kept, dropped = OrderedDict(), []
    for key, value in state_dict.items():
        if key.startswith(PRETRAIN_ONLY) or part_of(key) not in parts:
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


def load_report(model: nn.Module, state: Dict) -> Dict[str, Dict[str, list]]:
    """What loading ``state`` into ``model`` (mmengine's non-strict
    ``load_from``) does, grouped by model part; the model is not touched.

    The modules' load-state-dict hooks run first, as in the real load
    (:func:`glid_mm.utils.load_check.load_from_report`), so a tensor a hook
    adapts counts as loaded: mmpretrain's Swin resizes relative-position
    tables (window 6 -> 7 between pre-training and fine-tuning); such keys
    are also listed under ``resized``. Keys a hook drops because the model
    computes them itself (Swin's ``relative_position_index`` for its
    window) are ``model_computed``, not missing.

    Returns:
        dict: ``{'loaded'|'resized'|'model_computed'|'missing'|'unexpected'
        |'shape_mismatch': {part: [keys]}}``; shape mismatches (after the
        hooks) are not loaded and also count as missing.
    """
    from glid_mm.utils.load_check import load_from_report
    report = load_from_report(model, state)
    own = model.state_dict()
    resized = [
        k for k in report['matched']
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    mismatch = [
        f'{k}: checkpoint {c} vs model {m}' for k, c, m in report['mismatch']
    ]
    # in the checkpoint, dropped by a load hook: the model keeps the value
    # it computed itself (Swin's relative_position_index for its window)
    own_value = [k for k in report['missing'] if k in state]
    groups = dict(
        loaded=report['matched'],
        resized=[
            f'{k}: checkpoint {tuple(state[k].shape)} -> model '
            f'{tuple(own[k].shape)}' for k in resized
        ],
        model_computed=own_value,
        missing=[k for k in report['missing'] if k not in own_value] +
        [k for k, _, _ in report['mismatch']],
        unexpected=report['unexpected'],
        shape_mismatch=mismatch)
    return {
        name: {p: [k for k in keys if part_of(k.split(':')[0]) == p]
               for p in PARTS if any(part_of(k.split(':')[0]) == p
                                     for k in keys)}
        for name, keys in groups.items()
    }


def format_report(report: Dict[str, Dict[str, list]]) -> str:
    lines = []
    for name in ('loaded', 'resized', 'model_computed', 'missing',
                 'unexpected', 'shape_mismatch'):
        groups = report.get(name, {})
        total = sum(len(v) for v in groups.values())
        lines.append(f'{name}: {total}')
        for part, keys in groups.items():
            shown = keys if name != 'loaded' else keys[:3] + (
                ['...'] if len(keys) > 3 else [])
            lines.append(f'  {part} ({len(keys)}): {", ".join(shown)}')
    return '\n'.join(lines)
