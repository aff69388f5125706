"""glid_mm data transforms (registered on import)."""
from glid_mm.datasets.transforms.checks import CheckDepthMap, CheckSegLabels
from glid_mm.datasets.transforms.glid_mask_generator import GLIDMaskGenerator
from glid_mm.datasets.transforms.m3i_views import M3ITwoViews

__all__ = [
    'CheckDepthMap', 'CheckSegLabels', 'GLIDMaskGenerator', 'M3ITwoViews'
]
