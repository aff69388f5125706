"""Turn two common OpenMMLab failures into errors that name the culprit.

- An unknown ``type`` in a config: mmengine says ``X is not in the
  mmdet::model registry`` and nothing else; we add the close names.
- A checkpoint that needs arbitrary code: torch's weights-only unpickler
  refuses it with a long generic text; we name the file and the globals it
  needs, and say why glid_mm will not load it with ``weights_only=False``.
"""
import difflib
import pickle
import re
from typing import List, Optional

_REGISTRY_MSG = re.compile(r'(\S+) is not in the (\w+)::(\w+) registry')


def _registry_names(scope: str, registry_name: str) -> List[str]:
    import mmengine.registry.root as root
    from mmengine.registry import Registry
    roots = [
        r for r in vars(root).values()
        if isinstance(r, Registry) and r.name == registry_name
    ]
    names = set()
    for reg in roots:
        reg.import_from_location()
        child = reg._search_child(scope) or reg
        child.import_from_location()
        while child is not None:
            names.update(child.module_dict)
            child = child.parent
    return sorted(names)


def explain_registry_error(exc: KeyError) -> Optional[KeyError]:
    """A ``KeyError`` that also lists close registered names, or None."""
    match = _REGISTRY_MSG.search(str(exc))
    if match is None:
        return None
    name, scope, registry_name = match.groups()
    name = name.strip('\'"`')
    plain = name.split('.')[-1]
    close = difflib.get_close_matches(
        plain, _registry_names(scope, registry_name), n=5, cutoff=0.6)
    hint = (f' Close names in {scope}::{registry_name}: {", ".join(close)}.'
            if close else
            f' No close name is registered in {scope}::{registry_name}; '
            'is the package that defines it in custom_imports?')
    return KeyError(f'unknown {registry_name} type {name!r} (default scope '
                    f'{scope!r}).{hint}')


def explain_unpickling_error(exc: Exception,
                             checkpoint: Optional[str]) -> Optional[Exception]:
    """A clear error for a checkpoint refused by weights-only loading."""
    if not isinstance(exc, pickle.UnpicklingError) or \
            'Weights only load failed' not in str(exc):
        return None
    needs = ''
    if checkpoint:
        try:
            import torch
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                checkpoint)
            needs = f' It needs these non-tensor globals: {unsafe}.'
        except Exception:  # not a torch zip file etc.
            pass
    return pickle.UnpicklingError(
        f'checkpoint {checkpoint!r} was refused by torch\'s weights-only '
        f'loader.{needs} Unpickling arbitrary globals can run arbitrary '
        'code, so glid_mm never loads with weights_only=False. If you trust '
        'the file, load it yourself with torch.load(path, '
        'weights_only=False) and re-save only its tensors '
        '(torch.save({"state_dict": ckpt["state_dict"]}, new_path)).')
