"""glid_mm datasets (registered on import)."""
from .camvid import CamVidDataset

__all__ = ['CamVidDataset']
