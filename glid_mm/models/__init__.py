"""glid_mm models (registered on import)."""
from . import m3i  # noqa: F401  (M3I pre-training, mmpretrain)

__all__ = []
