from .finite_loss_hook import FiniteLossHook
from .gppf_selection_logger_hook import GPPFSelectionLoggerHook
from .gumbel_temperature_hook import GumbelTemperatureHook

__all__ = [
    'FiniteLossHook', 'GPPFSelectionLoggerHook', 'GumbelTemperatureHook'
]
