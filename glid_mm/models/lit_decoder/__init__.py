"""LiT decoder: autoregressive multi-task text decoder on an image encoder
("A Study of Autoregressive Decoders for Multi-Tasking in Computer
Vision")."""
from .decoding import beam_search, sample_decode, score_classes
from .model import LiTDecoder
from .text_decoder import LiTTextDecoder
from .tokenizer import LiTBPETokenizer
from .tokenizer_hook import LiTTokenizerHook

__all__ = [
    'LiTDecoder', 'LiTTextDecoder', 'LiTBPETokenizer', 'LiTTokenizerHook',
    'beam_search', 'sample_decode', 'score_classes'
]
