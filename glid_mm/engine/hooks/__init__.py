from glid_mm.engine.hooks.atomic_checkpoint_hook import AtomicCheckpointHook
from glid_mm.engine.hooks.finite_loss_hook import FiniteLossHook
from glid_mm.engine.hooks.gppf_gumbel_temperature_hook import \
    GumbelTemperatureHook
from glid_mm.engine.hooks.gppf_selection_logger_hook import \
    GPPFSelectionLoggerHook
from glid_mm.engine.hooks.lit_tokenizer_hook import LiTTokenizerHook

__all__ = [
    'AtomicCheckpointHook', 'FiniteLossHook', 'GPPFSelectionLoggerHook',
    'GumbelTemperatureHook', 'LiTTokenizerHook'
]
