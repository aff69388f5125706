"""Building blocks: GLID's decoder layer, queries, Bi-FPN node and
visible-token pyramid; GPPF's lego layer and cross-task SyncBN; M3I's mixer
and crop geometry."""
from glid_mm.models.layers.glid_queries import GLIDQueries
from glid_mm.models.layers.gppf_cross_task_sync_bn import CrossTaskSyncBN
from glid_mm.models.layers.gppf_lego_layer import LegoLayer, LegoStem
from glid_mm.models.layers.m3i_mixer import M3IMixer
from glid_mm.registry import available

__all__ = [
    'CrossTaskSyncBN', 'GLIDQueries', 'LegoLayer', 'LegoStem', 'M3IMixer'
]
if available('mmdet'):
    from glid_mm.models.layers.glid_decoder_layer import \
        GLIDDecoderLayer  # noqa: F401
    __all__ += ['GLIDDecoderLayer']
