from .finite_loss_hook import FiniteLossHook
from .gumbel_temperature_hook import GumbelTemperatureHook

__all__ = ['FiniteLossHook', 'GumbelTemperatureHook']
