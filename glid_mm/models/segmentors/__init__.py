"""glid_mm mmseg segmentors (registered on import)."""
from glid_mm.models.segmentors.glid_depth_estimator import GLIDDepthEstimator
from glid_mm.models.segmentors.glid_encoder_decoder import GLIDEncoderDecoder

__all__ = ['GLIDEncoderDecoder', 'GLIDDepthEstimator']
