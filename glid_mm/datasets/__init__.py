"""glid_mm datasets (registered on import)."""
from . import transforms  # noqa: F401  (M3I two-view transform, ...)
from .camvid import CamVidDataset

__all__ = ['CamVidDataset']
