"""glid_mm necks (registered on import)."""
from glid_mm.models.necks.bifpn import BiFPN

__all__ = ['BiFPN']
