"""Whole models: pre-training algorithms and the GPPF multi-task model
(registered on import; those whose toolbox is missing are skipped)."""
from glid_mm.models.algorithms.gppf_multi_task_model import (
    GPPFMultiTaskModel, task_of)
from glid_mm.registry import available

__all__ = ['GPPFMultiTaskModel', 'task_of']
if available('mmpretrain', 'mmdet'):
    from glid_mm.models.algorithms.glid import GLID  # noqa: F401
    __all__ += ['GLID']
if available('mmpretrain'):
    from glid_mm.models.algorithms.lit_decoder import LiTDecoder  # noqa
    from glid_mm.models.algorithms.m3i import M3I  # noqa: F401
    __all__ += ['LiTDecoder', 'M3I']
