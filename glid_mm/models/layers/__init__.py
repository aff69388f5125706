"""Building blocks shared by glid_mm models."""
from .glid_decoder_layer import GLIDDecoderLayer
from .glid_queries import GLIDQueries

__all__ = ['GLIDDecoderLayer', 'GLIDQueries']
