"""glid_mm data transforms (registered on import; those whose toolbox is
missing are skipped)."""
from glid_mm.datasets.transforms.checks import CheckDepthMap, CheckSegLabels
from glid_mm.datasets.transforms.glid_mask_generator import GLIDMaskGenerator
from glid_mm.registry import available

__all__ = ['CheckDepthMap', 'CheckSegLabels', 'GLIDMaskGenerator']
if available('mmpretrain'):
    from glid_mm.datasets.transforms.m3i_views import M3ITwoViews  # noqa
    __all__ += ['M3ITwoViews']
