"""glid_mm backbones (registered on import)."""
from .glid_swin import GLIDSwinTransformer

__all__ = ['GLIDSwinTransformer']
