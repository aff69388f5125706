"""glid_mm models, by stage (registered on import).

Data flow: ``backbones`` -> ``necks`` (Bi-FPN) -> ``decoders`` (queries) ->
``heads`` -> ``losses``; ``algorithms`` (pre-training and multi-task models),
``detectors`` / ``segmentors`` / ``pose_estimators`` (GLID fine-tuning models
for mmdet / mmseg / mmpose), ``layers`` (building blocks), ``converters``
(checkpoint conversion) and ``utils`` (the LiT tokenizer). File names carry
the paper prefix: ``glid_*``, ``gppf_*``, ``lit_*``, ``m3i_*``. Parts whose
toolbox is not installed are skipped (:func:`glid_mm.registry.available`).
"""
from glid_mm.models import converters  # noqa: F401
from glid_mm.models import (algorithms, backbones, decoders, heads, layers,
                            losses, necks)
from glid_mm.registry import available

if available('mmdet'):
    from glid_mm.models import detectors  # noqa: F401
if available('mmseg'):
    from glid_mm.models import segmentors  # noqa: F401
if available('mmpose'):
    from glid_mm.models import pose_estimators  # noqa: F401
if available('mmpretrain'):
    from glid_mm.models import utils  # noqa: F401

__all__ = [
    'algorithms', 'backbones', 'converters', 'decoders', 'heads', 'layers',
    'losses', 'necks'
]
