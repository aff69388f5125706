"""glid_mm necks (registered on import)."""
from .bifpn import BiFPN

__all__ = ['BiFPN']
