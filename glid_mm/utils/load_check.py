"""What a checkpoint does to a model: the one load report of glid_mm.

- :func:`dry_run_report`: what mmengine's non-strict load would do
  (loaded, resized by a load hook, computed by the model, shape
  mismatches, missing, unexpected), the model untouched;
- :func:`load_and_report`: the same, then the load itself (refusing shape
  mismatches); what the converter scripts' ``--config`` /
  ``--check-config`` checks use;
- :func:`format_load_report`: the report as text, by model part
  (:func:`part_of`);
- :func:`check_load_from`: mmengine loads ``load_from`` non-strictly, so a
  checkpoint of another architecture "loads" with warnings only; this
  refuses what cannot be meant. ``tools/train.py`` and ``tools/test.py``
  call it through :func:`glid_mm.utils.preflight.check_built_runner` (opt
  out with ``load_from_check = False``).

The converters (``glid_mm.models.converters``) stay "state dict in, state
dict out" and import :func:`part_of` from here; nothing here imports the
models.
"""
import logging
import re
from collections import OrderedDict
from typing import Dict, Optional, Union

import torch
import torch.nn as nn

#: model parts of a report, in print order (mmdet / mmseg / mmpose / GLID
#: attribute names: backbone, neck, decoder with its queries, any head)
PARTS = ('backbone', 'neck', 'decoder', 'queries', 'head', 'other')
#: report entries, in print order
ENTRIES = ('loaded', 'resized', 'model_computed', 'mismatch', 'missing',
           'unexpected')
_WORDS = dict(
    model_computed='computed by the model', mismatch='shape mismatches')


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


def _key(entry):
    """The key of a report entry (``resized`` / ``mismatch`` hold
    ``(key, checkpoint shape, model shape)``)."""
    return entry if isinstance(entry, str) else entry[0]


def by_part(entries) -> Dict[str, list]:
    """``{part: entries}`` for the parts that have any, in :data:`PARTS`
    order."""
    out = {}
    for entry in entries:
        out.setdefault(part_of(_key(entry)), []).append(entry)
    return {p: out[p] for p in PARTS if p in out}


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


def dry_run_report(model: nn.Module,
                   state: Dict,
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
        dict: the :data:`ENTRIES`: ``loaded`` (fits, after the hooks),
        ``resized`` (loaded, but a hook changed its shape, e.g. Swin's
        relative-position table for another window), ``model_computed``
        (in the checkpoint, dropped by a hook because the model computes
        it: Swin's ``relative_position_index``), ``mismatch`` (not loaded:
        another shape), ``missing``, ``unexpected``. ``resized`` and
        ``mismatch`` hold ``(key, checkpoint shape, model shape)``, the
        others keys.

    Raises:
        CheckpointMismatchError: A pre-hook fails on this checkpoint (the
            real load would fail there too), naming the hook and module.
    """
    from mmengine.logging import MMLogger
    from mmengine.model import is_model_wrapper
    metadata = getattr(state, '_metadata', None)
    out = {name: [] for name in ENTRIES}

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
                out['model_computed' if key in state else 'missing'].append(
                    key)
            elif tuple(local[key].shape) != tuple(tensor.shape):
                out['mismatch'].append(
                    (key, tuple(local[key].shape), tuple(tensor.shape)))
            else:
                out['loaded'].append(key)
                if key in state and \
                        tuple(state[key].shape) != tuple(tensor.shape):
                    out['resized'].append(
                        (key, tuple(state[key].shape), tuple(tensor.shape)))
        for key in local:
            if key.startswith(prefix) and \
                    not key.endswith('.num_batches_tracked'):
                head, *rest = key[len(prefix):].split('.', 1)
                if head not in (module._modules if rest else own):
                    out['unexpected'].append(key)
        for child_name, child in module._modules.items():
            if child is not None:
                sub = prefix + child_name + '.'
                visit(child, {
                    k: v
                    for k, v in local.items() if k.startswith(sub)
                }, sub)

    logger, mute = MMLogger.get_current_instance(), _Mute()
    logger.addFilter(mute)  # the hooks log again in the real load
    try:
        visit(model, OrderedDict(state), '')
    finally:
        logger.removeFilter(mute)
    return out


def format_load_report(report: Dict[str, list],
                       max_keys: Optional[int] = 3) -> str:
    """One line of counts, then one line per model part with the keys of
    each entry (``max_keys`` of each, all with None; ``loaded`` keys are
    counted only)."""
    lines = [
        ', '.join(f'{len(report[n])} {_WORDS.get(n, n)}' for n in ENTRIES)
    ]
    parts = {name: by_part(report[name]) for name in ENTRIES}
    for part in PARTS:
        cells = []
        for name in ENTRIES:
            entries = parts[name].get(part, [])
            if not entries:
                continue
            cell = f'{len(entries)} {_WORDS.get(name, name)}'
            if name != 'loaded':
                shown = [
                    e if isinstance(e, str) else
                    f'{e[0]}: checkpoint {e[1]} -> model {e[2]}' if name ==
                    'resized' else f'{e[0]}: checkpoint {e[1]} vs model {e[2]}'
                    for e in entries[:max_keys]
                ]
                more = ', ...' if len(shown) < len(entries) else ''
                cell += f' ({", ".join(shown)}{more})'
            cells.append(cell)
        if cells:
            lines.append(f'  {part}: ' + '; '.join(cells))
    return '\n'.join(lines)


def load_and_report(model: nn.Module,
                    state: Dict,
                    who: str = 'the checkpoint') -> Dict[str, list]:
    """Load ``state`` into ``model`` non-strictly (the modules' load hooks
    run, as in mmengine's ``load_from``) and return the
    :func:`dry_run_report` of that load.

    Raises:
        CheckpointMismatchError: Some tensor has another shape in the
            model (after the hooks); nothing is loaded then. The message
            holds the report.
    """
    state = _tensors(state)
    report = dry_run_report(model, state, who)
    if report['mismatch']:
        raise CheckpointMismatchError(
            f'{who}: {len(report["mismatch"])} shape mismatch(es) with '
            f'{type(model).__name__}; does the config use the '
            'checkpoint\'s architecture? Checkpoint vs model:\n' +
            format_load_report(report))
    model.load_state_dict(state, strict=False)
    return report


def _tensors(state) -> 'OrderedDict':
    """Tensors of a state dict, ``module.`` stripped as mmengine does."""
    out = OrderedDict((re.sub(r'^module\.', '', k), v)
                      for k, v in state.items() if isinstance(v, torch.Tensor))
    out._metadata = getattr(state, '_metadata', None)
    return out


def check_load_from(model: nn.Module,
                    checkpoint: Union[str, dict],
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
            dry_run_report(model, _tensors(checkpoint['model']), who))
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
    report = dry_run_report(model, state, who)
    text = format_load_report(report)
    matched, mismatch = len(report['loaded']), len(report['mismatch'])
    backbone = [
        'backbone' in by_part(report[n])
        for n in ('loaded', 'mismatch', 'missing', 'unexpected')
    ]
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
