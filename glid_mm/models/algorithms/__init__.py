"""glid_mm algorithms (registered on import)."""
from .glid import GLID

__all__ = ['GLID']
