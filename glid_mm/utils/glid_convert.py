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
    """Load ``state`` into ``model`` (non-strict) and group the outcome.

    Returns ``{'loaded'|'missing'|'unexpected'|'shape_mismatch':
    {part: [keys]}}``; shape mismatches are not loaded.
    """
    own = model.state_dict()
    ok, mismatch = OrderedDict(), []
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            mismatch.append(f'{key}: checkpoint {tuple(value.shape)} vs '
                            f'model {tuple(own[key].shape)}')
        else:
            ok[key] = value
    result = model.load_state_dict(ok, strict=False)
    groups = dict(
        loaded=[k for k in ok if k in own],
        missing=list(result.missing_keys) +
        [m.split(':')[0] for m in mismatch],
        unexpected=list(result.unexpected_keys),
        shape_mismatch=mismatch)
    return {
        name: {p: [k for k in keys if part_of(k.split(':')[0]) == p]
               for p in PARTS if any(part_of(k.split(':')[0]) == p
                                     for k in keys)}
        for name, keys in groups.items()
    }


def format_report(report: Dict[str, Dict[str, list]]) -> str:
    lines = []
    for name in ('loaded', 'missing', 'unexpected', 'shape_mismatch'):
        groups = report.get(name, {})
        total = sum(len(v) for v in groups.values())
        lines.append(f'{name}: {total}')
        for part, keys in groups.items():
            shown = keys if name != 'loaded' else keys[:3] + (
                ['...'] if len(keys) > 3 else [])
            lines.append(f'  {part} ({len(keys)}): {", ".join(shown)}')
    return '\n'.join(lines)
