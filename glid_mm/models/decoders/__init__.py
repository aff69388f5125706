"""glid_mm query decoders (registered on import)."""
from .glid_decoder import GLIDDecoder

__all__ = ['GLIDDecoder']
