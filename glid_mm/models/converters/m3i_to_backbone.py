"""Hand-off: an M3I checkpoint -> a plain mmpretrain ViT backbone checkpoint.

M3I's encoder is a stock mmpretrain ``MAEViT`` (same parameter names as
``VisionTransformer``), so conversion keeps the ``backbone.`` entries and
drops the momentum encoder, decoder and heads. The result loads into any
mmpretrain classifier whose backbone is ``VisionTransformer`` (e.g.
``mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py``) through
``load_from`` or ``init_cfg=dict(type='Pretrained', checkpoint=...,
prefix='backbone.')``, and into mmdet / mmseg configs that use
``mmpretrain.VisionTransformer`` as their backbone the same way. (mmseg's own
``VisionTransformer`` uses different parameter names and is not a target.)
"""
from collections import Counter
from typing import Dict, Tuple, Union

import torch

SOURCES = dict(backbone='backbone.', momentum='target_generator.module.')


def _state_dict(checkpoint: Union[str, dict]) -> Dict[str, torch.Tensor]:
    if isinstance(checkpoint, str):
        checkpoint = torch.load(
            checkpoint, map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, dict):
        raise TypeError('checkpoint must be a path or a dict, got '
                        f'{type(checkpoint).__name__}')
    return checkpoint.get('state_dict', checkpoint)


def m3i_to_backbone(
        checkpoint: Union[str, dict],
        source: str = 'backbone',
        prefix: str = 'backbone.') -> Tuple[Dict[str, torch.Tensor], dict]:
    """Extract M3I's encoder as a ``VisionTransformer`` state dict.

    Args:
        checkpoint (str | dict): Path of an M3I checkpoint, a checkpoint dict
            (``{'state_dict': ...}``) or a bare state dict.
        source (str): ``'backbone'`` (the online encoder, what SiameseIM
            fine-tunes) or ``'momentum'`` (the EMA target encoder). Defaults
            to ``'backbone'``.
        prefix (str): Prefix of the output keys. Defaults to ``'backbone.'``
            (mmpretrain / mmdet / mmseg models name their backbone so).

    Returns:
        tuple: the new state dict and a report ``dict(kept=[keys],
        dropped={top-level module: count})``.
    """
    if source not in SOURCES:
        raise ValueError(f'source must be one of {sorted(SOURCES)}, got '
                         f'source={source!r}')
    state = _state_dict(checkpoint)
    src = SOURCES[source]
    out, dropped = {}, Counter()
    for key, value in state.items():
        if key.startswith(src):
            out[prefix + key[len(src):]] = value
        else:
            dropped[key.split('.', 1)[0]] += 1
    if not out:
        raise KeyError(f'no {src!r} keys in the checkpoint: is it an M3I '
                       f'checkpoint? top-level modules: {sorted(dropped)}')
    report = dict(kept=sorted(out), dropped=dict(sorted(dropped.items())))
    return out, report
