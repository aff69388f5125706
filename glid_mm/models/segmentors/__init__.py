"""glid_mm mmseg segmentors (registered on import)."""
from .glid_depth_estimator import GLIDDepthEstimator
from .glid_encoder_decoder import GLIDEncoderDecoder

__all__ = ['GLIDEncoderDecoder', 'GLIDDepthEstimator']
