"""glid_mm datasets (registered on import)."""
__all__ = []
