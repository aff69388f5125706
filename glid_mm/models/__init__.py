"""glid_mm models (registered on import)."""
__all__ = []
