"""glid_mm losses (registered on import)."""
__all__ = []
