"""Whole models: pre-training algorithms and the GPPF multi-task model."""
from glid_mm.models.algorithms.glid import GLID
from glid_mm.models.algorithms.gppf_multi_task_model import (
    GPPFMultiTaskModel, task_of)
from glid_mm.models.algorithms.lit_decoder import LiTDecoder
from glid_mm.models.algorithms.m3i import M3I

__all__ = ['GLID', 'GPPFMultiTaskModel', 'LiTDecoder', 'M3I', 'task_of']
