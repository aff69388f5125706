"""GLID pre-training checkpoint -> initialisation of a fine-tuning model.

GLID keeps the pre-trained decoder when fine-tuning and replaces only the
top linear head (Sec. 3.2, Sec. 4); Table 4 compares loading the backbone
only, backbone + Bi-FPN, and everything. The pre-training model and every
GLID fine-tuning model share the names ``backbone.*``, ``neck.*`` and
``decoder.*`` (with ``decoder.queries.*``), so conversion only drops the
pre-training head and the pre-training-only mask tokens, and restricts the
rest to the chosen parts. State dict in, state dict out: what the result
does to a model is :func:`glid_mm.utils.load_check.load_and_report`'s.
"""
from collections import OrderedDict
from typing import Dict, List, Tuple

from glid_mm.utils.load_check import part_of

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


def convert_pretrain_to_finetune(
        state_dict: Dict,
        mode: str = 'all') -> Tuple['OrderedDict', List[str]]:
    """Return ``(kept_state, dropped_keys)``.

    Args:
        state_dict (dict): The pre-training model's ``state_dict`` (the
            ``state_dict`` entry of an mmengine checkpoint).
        mode (str): ``'backbone'``, ``'backbone+neck'`` or ``'all'``.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {sorted(MODES)}, got {mode!r}')
    parts = MODES[mode]
    if not any(
            k.startswith('decoder.queries.') or k.startswith('head.')
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
