"""glid_mm mmpose pose estimators (registered on import)."""
from .glid_topdown import GLIDTopdownPoseEstimator

__all__ = ['GLIDTopdownPoseEstimator']
