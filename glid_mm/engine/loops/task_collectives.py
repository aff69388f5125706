"""Find the collectives a task model's training would run under SIMT.

Under SIMT (GPPF Sec. 3.2) each process runs the task it drew, so two
processes run two different task models in the same iteration. A loss that
all-reduces (mmdet's DETR / Deformable DETR / DINO / Mask2Former heads
average their normalisers with ``reduce_mean``; FCOS, ATSS, GFL, YOLOX,
RTMDet do the same with their positive counts) pairs its collective with
whatever the other processes run at that moment: another head's
all-reduce, or the gradient average of :class:`SIMTDistributedWrapper`.
That hangs at best, and at worst adds one task's count into another's
tensor without an error. :class:`SIMTTrainLoop` refuses such a task model
when it is built with several processes drawing tasks on their own.

This module reads the bytecode of every method of each submodule's class
(the task model, its data preprocessor and batch augments, its heads,
losses and layers; functions nested in them and decorated methods
included; not the methods of ``torch.nn.Module`` itself) for the names of
``torch.distributed`` / ``mmengine.dist`` / ``mmdet.utils`` collectives:
mmdet's ``BatchSyncRandomResize`` (YOLOX's batch augment) runs ``barrier``
while training, mmseg's EMA head ``reduce_mean`` in its forward. A module
that offers a ``local_normalisers()`` context (:class:`GLIDDETRHead`,
:class:`GLIDMaskHead`) is skipped: :class:`GPPFMultiTaskModel` runs its
loss inside that context with several processes, and no collective runs.
It finds what a method calls by name: a collective reached only through
a function of another module (a helper, a gradient hook registered
elsewhere) is not found.
"""
import inspect
import types
from typing import List, Set

import torch.nn as nn

#: names that run a collective when a method calls them (not ``gather``,
#: ``reduce`` or ``broadcast``: ``tensor.gather``, ``functools.reduce`` and
#: ``np.broadcast`` are common in models)
COLLECTIVES = frozenset({
    'reduce_mean', 'all_reduce', 'all_gather', 'all_gather_object',
    'all_reduce_dict', 'all_reduce_params', 'broadcast_object_list', 'barrier',
    'reduce_scatter', 'all_to_all'
})


def _names(code: types.CodeType) -> Set[str]:
    """Global and attribute names a code object (and the functions,
    lambdas and comprehensions nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def find_collectives(model: nn.Module) -> List[str]:
    """``'Class.method (defined in Owner) calls name'`` for every method of
    a submodule of ``model`` (``model`` included) that calls a collective
    by name, where the submodule has no ``local_normalisers()`` context;
    ``[]`` when training the task runs no collective of its own."""
    base = set(dir(nn.Module))
    found = []
    seen = set()
    for module in model.modules():
        cls = type(module)
        if cls in seen or hasattr(module, 'local_normalisers'):
            continue
        seen.add(cls)
        for attr in sorted(set(dir(cls)) - base):
            func = inspect.getattr_static(cls, attr, None)
            func = getattr(func, '__func__', func)  # static / class method
            if not callable(func):
                continue
            code = getattr(inspect.unwrap(func), '__code__', None)
            if not isinstance(code, types.CodeType):
                continue
            hits = sorted(_names(code) & COLLECTIVES)
            if hits:
                owner = next(
                    (c.__name__ for c in cls.__mro__ if attr in vars(c)),
                    cls.__name__)
                found.append(f'{cls.__name__}.{attr} (defined in {owner}) '
                             f'calls {", ".join(hits)}')
    return found


__all__ = ['find_collectives', 'COLLECTIVES']
