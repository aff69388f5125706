"""glid_mm data transforms (registered on import)."""
from .checks import CheckDepthMap, CheckSegLabels
from .m3i_views import M3ITwoViews

__all__ = ['CheckDepthMap', 'CheckSegLabels', 'M3ITwoViews']
