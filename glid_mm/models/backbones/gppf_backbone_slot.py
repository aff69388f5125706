"""Placeholder for a task model's backbone under GPPF's shared backbone."""
import torch.nn as nn

from glid_mm.registry import MODELS


@MODELS.register_module()  # every toolbox: a backbone
class SharedBackboneSlot(nn.Module):
    """Stands where a task model's ``backbone`` goes while it is built.

    mmdet's detectors and mmseg's segmentors build ``backbone`` from a
    config and accept no module; :class:`GPPFMultiTaskModel` builds each
    task model with this weightless slot and then puts the one shared
    backbone in its place. Calling it means that replacement did not happen.
    """

    def forward(self, *args, **kwargs):
        raise RuntimeError(
            'SharedBackboneSlot was called: a task model built for '
            'GPPFMultiTaskModel must run with the shared backbone')
