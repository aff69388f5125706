"""glid_mm evaluation (registered on import)."""
__all__ = []
