"""Make mmengine checkpoints load with ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, and a stock
mmengine 0.10.7 ``--resume`` fails with ``UnpicklingError: Weights only load
failed``: the ``message_hub`` entry of a checkpoint holds
:class:`~mmengine.logging.HistoryBuffer` objects (numpy arrays inside) and
``HistoryBuffer.__getstate__`` also pickles its statistics methods, which
unpickle through ``builtins.getattr``.

We keep weights-only loading on and never allow-list ``getattr``:

1. :func:`register_checkpoint_safe_globals` adds exactly the classes and
   numpy reconstructors that mmengine writes to torch's safe globals.
2. :func:`register_history_buffer_pickling` registers a ``copyreg`` reducer
   that pickles a ``HistoryBuffer`` *without* its statistics methods. Its own
   ``__setstate__`` restores the default ones (min, max, current, mean) on
   load; custom ones are class-level and re-registered when the module that
   defines them is imported.

Both run once at ``import glid_mm``.
"""
import copyreg
from typing import List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _numpy_globals() -> List[object]:
    """Globals that numpy (1.x and 2.x) arrays, dtypes and scalars need."""
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    items = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # dtype classes (numpy >= 1.25 pickles dtypes through them)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        items += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return items


def checkpoint_safe_globals() -> List[object]:
    """Everything an mmengine checkpoint needs beyond torch's defaults."""
    return [HistoryBuffer] + _numpy_globals()


def register_checkpoint_safe_globals() -> None:
    """Allow-list mmengine's checkpoint content for weights-only loading."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def _reduce_history_buffer(buffer: HistoryBuffer):
    state = {
        k: v
        for k, v in buffer.__dict__.items() if k != 'statistics_methods'
    }
    return copyreg.__newobj__, (HistoryBuffer, ), state


def register_history_buffer_pickling() -> None:
    """Pickle ``HistoryBuffer`` without its statistics methods."""
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)


def setup_safe_checkpoints() -> None:
    register_history_buffer_pickling()
    register_checkpoint_safe_globals()
