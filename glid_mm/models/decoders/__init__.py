"""Decoders: GLID's query decoder, M3I's target decoder, the LiT text
decoder and its decoding strategies (registered on import; those whose
toolbox is missing are skipped)."""
from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.decoders.glid_wiring import GLIDWiringMixin
from glid_mm.models.decoders.lit_decoding import (beam_search,
                                                  best_of_n_decode,
                                                  sample_decode, score_classes)
from glid_mm.models.decoders.lit_text_decoder import LiTTextDecoder
from glid_mm.registry import available

__all__ = [
    'GLIDDecoded', 'GLIDWiringMixin', 'LiTTextDecoder', 'beam_search',
    'best_of_n_decode', 'sample_decode', 'score_classes'
]
if available('mmdet'):
    from glid_mm.models.decoders.glid_decoder import GLIDDecoder  # noqa
    __all__ += ['GLIDDecoder']
if available('mmpretrain'):
    from glid_mm.models.decoders.m3i_decoder import M3IDecoder  # noqa: F401
    __all__ += ['M3IDecoder']
