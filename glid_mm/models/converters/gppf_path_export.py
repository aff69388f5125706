"""Extract one path of a lego backbone as a plain ResNet (GPPF Sec. 3.3).

Fixed-path fine-tuning "is almost the same as standard finetuning, except
that a standard backbone should be firstly extracted from the dynamic
backbone" (Sec. 3.3). These functions read a :class:`LegoResNet` state dict
(or a whole GPPF checkpoint) and return a state dict that mmdet's / mmseg's
own ``ResNet`` (``deep_stem=False``) loads with no missing keys:

- ``lego.stem.units.{k}.X``      -> ``X``            (``conv1``, ``bn1``)
- ``stem.X`` (non-lego stem)     -> ``X``
- ``lego.layer{s}_{j}.units.{k}.X`` -> ``layer{s}.{j}.X``

where ``k`` is the path's unit at that layer. Controllers are dropped.
:func:`lego_to_swin_state_dict` does the same for a
:class:`LegoSwinTransformer` and mmpretrain's ``SwinTransformer``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import torch

_LEGO_KEY = re.compile(r'^lego\.(stem|layer(\d+)_(\d+))\.units\.(\d+)\.(.+)$')


def _strip(state_dict: Dict[str, torch.Tensor],
           prefix: str) -> Dict[str, torch.Tensor]:
    if not prefix:
        return dict(state_dict)
    out = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not out:
        raise KeyError(f'no key starts with prefix {prefix!r}; first keys: '
                       f'{list(state_dict)[:5]}')
    return out


def lego_layer_names(state_dict: Dict[str, torch.Tensor],
                     prefix: str = '') -> List[str]:
    """Lego layer names in forward order (``stem``, ``layer1_0``, ...)."""
    names = set()
    for key in _strip(state_dict, prefix):
        m = _LEGO_KEY.match(key)
        if m:
            names.add(m.group(1))
    if not names:
        raise KeyError(f'no lego layer keys (lego.<layer>.units.<k>.*) under '
                       f'prefix {prefix!r}')

    def order(name):
        if name == 'stem':
            return (0, 0)
        stage, block = re.match(r'layer(\d+)_(\d+)', name).groups()
        return (int(stage), int(block))

    return sorted(names, key=order)


def task_path(state_dict: Dict[str, torch.Tensor],
              task: str,
              prefix: str = '') -> List[int]:
    """The argmax path of ``task``'s controller (``controllers.<task>``)."""
    sd = _strip(state_dict, prefix)
    key = f'controllers.{task}'
    if key not in sd:
        tasks = sorted(
            k.split('.', 1)[1] for k in sd if k.startswith('controllers.'))
        raise KeyError(f'no controller for task {task!r} under prefix '
                       f'{prefix!r}; tasks with a controller: {tasks}')
    return sd[key].argmax(dim=-1).tolist()


def lego_to_resnet_state_dict(state_dict: Dict[str, torch.Tensor],
                              path: Union[Sequence[int], str],
                              prefix: str = '') -> 'OrderedDict':
    """Plain ResNet state dict of one path of a lego backbone.

    Args:
        state_dict (dict): A LegoResNet state dict, or a larger one (e.g.
            a GPPF model's) with the backbone under ``prefix``.
        path (Sequence[int] or str): One unit index per lego layer, or a
            task name whose learned (argmax) path is taken.
        prefix (str): Key prefix of the backbone, e.g. ``'backbone.'``.
            Defaults to ''.

    Returns:
        OrderedDict: ``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``
        ... as in mmdet's ``ResNet``.
    """
    if isinstance(path, str):
        path = task_path(state_dict, path, prefix)
    sd = _strip(state_dict, prefix)
    names = lego_layer_names(sd)
    path = [int(k) for k in path]
    if len(path) != len(names):
        raise ValueError(f'path has {len(path)} entries but the backbone has '
                         f'{len(names)} lego layers {names}')
    chosen = dict(zip(names, path))
    out = OrderedDict()
    for key, value in sd.items():
        m = _LEGO_KEY.match(key)
        if m:
            name, stage, block, unit, rest = m.groups()
            if int(unit) != chosen[name]:
                continue
            target = rest if name == 'stem' else f'layer{stage}.{block}.{rest}'
        elif key.startswith('stem.'):
            target = key[len('stem.'):]
        else:
            continue  # controllers and anything not part of a ResNet
        out[target] = value.clone()
    for name, k in chosen.items():
        if not any(
                _LEGO_KEY.match(key) and key.startswith(f'lego.{name}.units.'
                                                        f'{k}.')
                for key in sd):
            raise ValueError(f'layer {name!r} has no unit {k}')
    return out


def extract_static_backbone(checkpoint: Union[str, dict],
                            path: Union[Sequence[int], str],
                            prefix: str = 'backbone.',
                            out_file: Optional[str] = None) -> 'OrderedDict':
    """Load a checkpoint, extract ``path`` and optionally save it.

    The saved file is ``{'state_dict': <ResNet keys>, 'meta': {...}}``,
    loadable by ``init_cfg=dict(type='Pretrained', checkpoint=out_file)`` of
    a stock mmdet/mmseg ResNet-50.
    """
    if isinstance(checkpoint, str):
        checkpoint = torch.load(
            checkpoint, map_location='cpu', weights_only=True)
    state_dict = checkpoint.get('state_dict', checkpoint)
    if isinstance(path, str):
        task, path = path, task_path(state_dict, path, prefix)
    else:
        task = None
    static = lego_to_resnet_state_dict(state_dict, path, prefix)
    if out_file is not None:
        torch.save(
            dict(
                state_dict=static,
                meta=dict(gppf_path=list(path), gppf_task=task)), out_file)
    return static


_SWIN_LEGO_KEY = re.compile(
    r'^lego\.(stem|stage(\d+)_(\d+|down))\.units\.(\d+)\.(.+)$')
_SWIN_SHARED_KEY = re.compile(r'^(patch_embed|downsamples\.(\d+)|norm\d+)\.')


def lego_to_swin_state_dict(state_dict: Dict[str, torch.Tensor],
                            path: Union[Sequence[int], str],
                            prefix: str = '') -> 'OrderedDict':
    """mmpretrain ``SwinTransformer`` state dict of one lego Swin path.

    The Swin counterpart of :func:`lego_to_resnet_state_dict` for
    :class:`LegoSwinTransformer` (GPPF-SwinT, Sec. 3.3 extraction):

    - ``lego.stem.units.{k}.X``          -> ``patch_embed.X``
    - ``lego.stage{i}_{j}.units.{k}.X``  -> ``stages.{i}.blocks.{j}.X``
    - ``lego.stage{i}_down.units.{k}.X`` -> ``stages.{i}.downsample.X``
    - ``downsamples.{i}.X`` (shared)     -> ``stages.{i}.downsample.X``
    - ``patch_embed.X``, ``norm{i}.X`` (shared) are kept

    where ``k`` is the path's unit at that layer; controllers are dropped.
    The result loads into ``SwinTransformer(arch=..., out_indices=...)``
    of the lego model's ``arch`` and ``out_indices``.

    Args:
        state_dict (dict): A LegoSwinTransformer state dict, or a larger one
            with the backbone under ``prefix``.
        path (Sequence[int] or str): One unit index per lego layer (in the
            order ``stem``, ``stage0_0``, ..., ``stage0_down``,
            ``stage1_0``, ...), or a task name whose argmax path is taken.
        prefix (str): Key prefix of the backbone. Defaults to ''.
    """
    if isinstance(path, str):
        path = task_path(state_dict, path, prefix)
    sd = _strip(state_dict, prefix)
    names = {m.group(1): m for m in map(_SWIN_LEGO_KEY.match, sd) if m}
    if not names:
        raise KeyError(f'no lego Swin keys (lego.<layer>.units.<k>.*) under '
                       f'prefix {prefix!r}')

    def order(name):
        if name == 'stem':
            return (-1, 0)
        m = names[name]
        block = m.group(3)
        return (int(m.group(2)), 1 << 30 if block == 'down' else int(block))

    names = sorted(names, key=order)
    path = [int(k) for k in path]
    if len(path) != len(names):
        raise ValueError(f'path has {len(path)} entries but the backbone has '
                         f'{len(names)} lego layers {names}')
    chosen = dict(zip(names, path))
    out = OrderedDict()
    found = set()
    for key, value in sd.items():
        m = _SWIN_LEGO_KEY.match(key)
        shared = _SWIN_SHARED_KEY.match(key)
        if m:
            name, stage, block, unit, rest = m.groups()
            if int(unit) != chosen[name]:
                continue
            found.add(name)
            if name == 'stem':
                target = f'patch_embed.{rest}'
            elif block == 'down':
                target = f'stages.{stage}.downsample.{rest}'
            else:
                target = f'stages.{stage}.blocks.{block}.{rest}'
        elif shared and shared.group(2) is not None:
            target = (f'stages.{shared.group(2)}.downsample.'
                      f'{key[shared.end():]}')
        elif shared:
            target = key
        else:
            continue  # controllers
        out[target] = value.clone()
    missing = [
        f'{name}: unit {k}' for name, k in chosen.items() if name not in found
    ]
    if missing:
        raise ValueError(f'lego layers lack the path units {missing}')
    return out


def resnet_to_lego_state_dict(resnet_state: Dict[str, torch.Tensor],
                              lego_keys: Sequence[str]) -> 'OrderedDict':
    """A plain ResNet state dict copied into every unit of a lego backbone.

    The inverse of :func:`lego_to_resnet_state_dict` for all paths at once:
    ``lego.layer{s}_{j}.units.{k}.X`` <- ``layer{s}.{j}.X`` and
    ``lego.stem.units.{k}.X`` / ``stem.X`` <- ``X`` for every ``k``, so
    each unit starts from the same (e.g. ImageNet) weights. Keys of
    torchvision, mmdet, mmseg and mmpretrain ResNets (``conv1``, ``bn1``,
    ``layer1.0.conv1`` ...) are accepted, with or without a ``backbone.``
    prefix; controllers are not touched.

    Args:
        resnet_state (dict): A plain ResNet state dict.
        lego_keys (Sequence[str]): The lego backbone's state-dict keys.

    Returns:
        OrderedDict: Lego keys -> tensors, every lego key whose ResNet key
        exists in ``resnet_state``.
    """
    if any(k.startswith('backbone.') for k in resnet_state):
        resnet_state = _strip(resnet_state, 'backbone.')
    out = OrderedDict()
    for key in lego_keys:
        m = _LEGO_KEY.match(key)
        if m:
            name, stage, block, _, rest = m.groups()
            source = rest if name == 'stem' else \
                f'layer{stage}.{block}.{rest}'
        elif key.startswith('stem.'):
            source = key[len('stem.'):]
        else:
            continue
        if source in resnet_state:
            out[key] = resnet_state[source]
    return out
