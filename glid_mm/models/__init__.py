"""glid_mm models (registered on import)."""
# GLID core
from . import (algorithms, backbones, decoders, heads,  # noqa: F401
               layers, losses, necks)
from . import m3i  # noqa: F401  (M3I pre-training, mmpretrain)
from . import gppf  # noqa: F401  (GPPF lego backbone, multi-task model)
from . import lit_decoder  # noqa: F401  (LiT decoder, mmpretrain)
from . import detectors  # noqa: F401  (GLID mmdet detectors)
from . import segmentors  # noqa: F401  (GLID mmseg segmentors)
from . import pose_estimators  # noqa: F401  (GLID mmpose estimators)

__all__ = []
