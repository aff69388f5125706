"""Losses: the scale-invariant depth loss (GLID) and M3I's target losses."""
from glid_mm.models.losses.m3i_losses import (contrastive_loss,
                                              dense_feature_loss)
from glid_mm.models.losses.sig_loss import SigLoss

__all__ = ['SigLoss', 'contrastive_loss', 'dense_feature_loss']
