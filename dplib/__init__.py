"""dplib: deep perceptual loss networks, their benchmarks, and the paper's analysis.

    import dplib
    loss = dplib.PerceptualLoss("vgg16", "early")(output, target)
"""

from .lossnets import ARCHITECTURES, POINTS, EXTRACTION_POINTS, LossNetwork
from .losses import PerceptualLoss, perceptual_distance, feature_loss, perceptual_sse

__version__ = "0.1.0"
__all__ = ["ARCHITECTURES", "POINTS", "EXTRACTION_POINTS", "LossNetwork", "PerceptualLoss",
           "perceptual_distance", "feature_loss", "perceptual_sse"]
