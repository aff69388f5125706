"""glid_mm engine (registered on import)."""
__all__ = []
