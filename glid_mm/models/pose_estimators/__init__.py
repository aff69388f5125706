"""glid_mm mmpose pose estimators (registered on import)."""
from glid_mm.models.pose_estimators.glid_topdown import \
    GLIDTopdownPoseEstimator

__all__ = ['GLIDTopdownPoseEstimator']
