"""Does a ``load_from`` checkpoint fit the model? (before any step)

mmengine loads ``load_from`` non-strictly, so a checkpoint of another
architecture "loads" with warnings only. :func:`check_load_from` compares the
checkpoint with the built model part by part and refuses what cannot be
meant; ``tools/train.py`` and ``tools/test.py`` call it through
:func:`glid_mm.utils.preflight.check_built_runner` (opt out with
``load_from_check = False``).
"""
import logging
import re
from collections import OrderedDict
from typing import Dict, Optional, Union

import torch
import torch.nn as nn

from glid_mm.models.converters.glid_pretrain_to_finetune import PARTS, part_of


class CheckpointMismatchError(ValueError):
    """A ``load_from`` checkpoint that does not fit the model."""


class _Mute(logging.Filter):

    def filter(self, record) -> bool:
        return False


def _own_tensors(module: nn.Module) -> Dict[str, torch.Tensor]:
    """A module's direct parameters and persistent buffers."""
    own = {n: t for n, t in module._parameters.items() if t is not None}
    own.update({
        n: t
        for n, t in module._buffers.items()
        if t is not None and n not in module._non_persistent_buffers_set
    })
    return own


def load_from_report(model: nn.Module, state: Dict,
                     who: str = 'the checkpoint') -> Dict[str, list]:
    """What mmengine's non-strict ``load_state_dict`` would do, unloaded.

    It walks the modules as mmengine's loader does (each child sees the
    keys under its prefix) and runs the modules' load-state-dict pre-hooks
    on a shallow copy first, so what they fix counts as fitting: mmpretrain
    resizes Swin relative-position tables and ViT/Swin position embeddings
    there, mmpose renames old head keys. BatchNorm's ``num_batches_tracked``
    counters are left out (they always fit and carry no weights). The model
    is not touched.

    Args:
        model (nn.Module): The built model, unwrapped.
        state (dict): The checkpoint's state dict.
        who (str): The checkpoint in messages.

    Returns:
        dict: ``matched``, ``missing``, ``unexpected`` (key lists) and
        ``mismatch`` (``(key, checkpoint shape, model shape)``).

    Raises:
        CheckpointMismatchError: A pre-hook fails on this checkpoint (the
            real load would fail there too), naming the hook and module.
    """
    from mmengine.logging import MMLogger
    from mmengine.model import is_model_wrapper
    metadata = getattr(state, '_metadata', None)
    out = dict(matched=[], mismatch=[], missing=[], unexpected=[])

    def visit(module, local, prefix):
        if is_model_wrapper(module):
            module = module.module
        meta = {} if metadata is None else metadata.get(prefix[:-1], {})
        for hook in module._load_state_dict_pre_hooks.values():
            try:
                hook(local, prefix, meta, True, [], [], [])
            except Exception as exc:
                func = getattr(hook, 'hook', hook)
                raise CheckpointMismatchError(
                    f'{who}: the load-state-dict hook '
                    f'{getattr(func, "__qualname__", func)} of '
                    f'{prefix[:-1] or "the model"} ({type(module).__name__}'
                    f') fails on it, so mmengine\'s load_from would fail '
                    f'there too: {type(exc).__name__}: {exc}') from exc
        own = _own_tensors(module)
        for attr, tensor in own.items():
            key = prefix + attr
            if attr == 'num_batches_tracked':
                continue  # a step count, not a weight: it always "fits"
            if key not in local:
                out['missing'].append(key)
            elif tuple(local[key].shape) != tuple(tensor.shape):
                out['mismatch'].append(
                    (key, tuple(local[key].shape), tuple(tensor.shape)))
            else:
                out['matched'].append(key)
        for key in local:
            if key.startswith(prefix) and \
                    not key.endswith('.num_batches_tracked'):
                head, *rest = key[len(prefix):].split('.', 1)
                if head not in (module._modules if rest else own):
                    out['unexpected'].append(key)
        for child_name, child in module._modules.items():
            if child is not None:
                sub = prefix + child_name + '.'
                visit(child, {k: v
                              for k, v in local.items() if k.startswith(sub)},
                      sub)

    logger, mute = MMLogger.get_current_instance(), _Mute()
    logger.addFilter(mute)  # the hooks log again in the real load
    try:
        visit(model, OrderedDict(state), '')
    finally:
        logger.removeFilter(mute)
    return out


def format_load_report(report: Dict[str, list]) -> str:
    """One line of counts, then one per model part with a few keys each."""
    names = ('matched', 'mismatch', 'missing', 'unexpected')
    words = dict(mismatch='shape mismatches')
    lines = [', '.join(f'{len(report[n])} {words.get(n, n)}' for n in names)]
    for part in PARTS:
        cells = []
        for name in names:
            keys = [k for k in report[name]
                    if part_of(k[0] if name == 'mismatch' else k) == part]
            if not keys:
                continue
            shown = [f'{k}: checkpoint {c} vs model {m}'
                     for k, c, m in keys[:3]] if name == 'mismatch' else (
                         keys[:3])
            more = ', ...' if len(keys) > 3 else ''
            cells.append(f'{len(keys)} {words.get(name, name)}' + (
                '' if name == 'matched' else f' ({", ".join(shown)}{more})'))
        if cells:
            lines.append(f'  {part}: ' + '; '.join(cells))
    return '\n'.join(lines)


def _tensors(state) -> 'OrderedDict':
    """Tensors of a state dict, ``module.`` stripped as mmengine does."""
    out = OrderedDict((re.sub(r'^module\.', '', k), v)
                      for k, v in state.items() if isinstance(v, torch.Tensor))
    out._metadata = getattr(state, '_metadata', None)
    return out


def check_load_from(model: nn.Module, checkpoint: Union[str, dict],
                    name: Optional[str] = None) -> str:
    """Compare a ``load_from`` checkpoint with the built model.

    mmengine reads ``checkpoint['state_dict']`` (or the whole dict) and
    loads non-strictly, so a checkpoint of another architecture "loads"
    with warnings only. Fatal here: no model tensor matches by name and
    shape; shape mismatches outnumber matches; the checkpoint has backbone
    tensors and the model too but none matches (the backbone would stay
    random); or the weights sit under ``'model'`` (timm / official
    releases), which mmengine does not read. Missing and unexpected keys
    alone are fine: a GLID pre-training checkpoint has a head and mask
    tokens the fine-tuning model lacks, and a backbone-only checkpoint
    (GLID Table 4) lacks the rest.

    Args:
        model (nn.Module): The built model, unwrapped.
        checkpoint (str | dict): A file (any mmengine checkpoint path or
            URL) or a loaded checkpoint.
        name (str, optional): The checkpoint's name in messages. Defaults
            to the file name.

    Returns:
        str: The per-part report (:func:`format_load_report`), to log.

    Raises:
        CheckpointMismatchError: With the report and the opt-out.
    """
    if isinstance(checkpoint, str):
        from mmengine.runner.checkpoint import _load_checkpoint
        name = name or checkpoint
        checkpoint = _load_checkpoint(checkpoint, map_location='cpu')
    who = f'load_from={name}' if name else 'the checkpoint'
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'{who} holds a {type(checkpoint).__name__}, not a state dict')
    state = _tensors(checkpoint.get('state_dict', checkpoint))
    target = type(model).__name__
    hint = ('\nIf this is intended, set load_from_check = False in the '
            'config (--cfg-options load_from_check=False).')
    if not state and isinstance(checkpoint.get('model'), dict):
        text = format_load_report(
            load_from_report(model, _tensors(checkpoint['model']), who))
        raise CheckpointMismatchError(
            f'{who} keeps its tensors under "model", which '
            f'mmengine\'s load_from does not read (it reads "state_dict" '
            f'or a plain state dict): nothing would load into {target}. '
            f'Re-save it as {{"state_dict": ckpt["model"]}} (or with the '
            f'toolbox\'s model converter). Against the model it would '
            f'give:\n{text}{hint}')
    if not state:
        raise CheckpointMismatchError(
            f'{who} holds no tensors at its top level or under '
            f'"state_dict" (keys: {sorted(checkpoint)[:10]}){hint}')
    report = load_from_report(model, state, who)
    text = format_load_report(report)
    matched, mismatch = len(report['matched']), len(report['mismatch'])
    backbone = [any(part_of(k if isinstance(k, str) else k[0]) == 'backbone'
                    for k in report[n])
                for n in ('matched', 'mismatch', 'missing', 'unexpected')]
    reason = None
    if matched == 0:
        reason = (f'none of its {len(state)} tensors matches a model tensor '
                  'by name and shape')
    elif mismatch > matched:
        reason = (f'{mismatch} tensors have another shape in the model, more '
                  f'than the {matched} that match')
    elif not backbone[0] and (backbone[1] or backbone[3]) and \
            (backbone[1] or backbone[2]):
        reason = ('none of its backbone tensors matches the model\'s '
                  'backbone by name and shape')
    if reason is not None:
        raise CheckpointMismatchError(
            f'{who} does not fit {target}: {reason} (mmengine '
            f'would load it non-strictly and only log warnings). '
            f'Checkpoint vs model:\n{text}{hint}')
    return text
