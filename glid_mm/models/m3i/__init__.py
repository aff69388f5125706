"""M3I Pre-training (Su et al., CVPR 2023) for mmpretrain."""
from .attention_pooling import M3IAttentionPoolHead
from .convert import m3i_to_backbone
from .decoder import M3IDecoder
from .m3i import M3I
from .mixer import M3IMixer

__all__ = [
    'M3I', 'M3IAttentionPoolHead', 'M3IDecoder', 'M3IMixer', 'm3i_to_backbone'
]
