"""Decoders: GLID's query decoder, M3I's target decoder, the LiT text
decoder and its decoding strategies (registered on import)."""
from glid_mm.models.decoders.glid_decoder import GLIDDecoder
from glid_mm.models.decoders.lit_decoding import (beam_search,
                                                  best_of_n_decode,
                                                  sample_decode,
                                                  score_classes)
from glid_mm.models.decoders.lit_text_decoder import LiTTextDecoder
from glid_mm.models.decoders.m3i_decoder import M3IDecoder

__all__ = [
    'GLIDDecoder', 'LiTTextDecoder', 'M3IDecoder', 'beam_search',
    'best_of_n_decode', 'sample_decode', 'score_classes'
]
