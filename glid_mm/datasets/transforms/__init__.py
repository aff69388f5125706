"""glid_mm data transforms (registered on import)."""
from .m3i_views import M3ITwoViews

__all__ = ['M3ITwoViews']
