"""Model utilities: the LiT BPE tokenizer (registered in mmpretrain's
TOKENIZER registry on import)."""
from glid_mm.models.utils.lit_tokenizer import LiTBPETokenizer

__all__ = ['LiTBPETokenizer']
