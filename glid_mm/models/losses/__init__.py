"""glid_mm losses (registered on import)."""
from .sig_loss import SigLoss

__all__ = ['SigLoss']
