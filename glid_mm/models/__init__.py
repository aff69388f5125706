"""glid_mm models, by stage (registered on import).

Data flow: ``backbones`` -> ``necks`` (Bi-FPN) -> ``decoders`` (queries) ->
``heads`` -> ``losses``; ``algorithms`` (pre-training and multi-task models),
``detectors`` / ``segmentors`` / ``pose_estimators`` (GLID fine-tuning models
for mmdet / mmseg / mmpose), ``layers`` (building blocks), ``converters``
(checkpoint conversion) and ``utils`` (the LiT tokenizer). File names carry
the paper prefix: ``glid_*``, ``gppf_*``, ``lit_*``, ``m3i_*``.
"""
from glid_mm.models import (algorithms, backbones, converters,  # noqa: F401
                            decoders, detectors, heads, layers, losses,
                            necks, pose_estimators, segmentors, utils)

__all__ = []
