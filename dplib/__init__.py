"""dplib: deep perceptual loss networks, their benchmarks, and the paper's analysis.

    import dplib
    loss = dplib.PerceptualLoss("vgg16", "early")(output, target)
"""

from .lossnets import ARCHITECTURES, POINTS, EXTRACTION_POINTS, REGISTRY, LossNetwork, list_points, register_architecture
from .losses import PerceptualLoss, perceptual_distance, feature_loss, perceptual_sse
from .errors import install_in_ipython
from . import extended  # noqa: F401  (registers the networks beyond the paper's 14 and timm's resolver)

install_in_ipython()  # in a notebook, errors a user fixes show as one line (dplib.errors)

__version__ = "0.1.0"
__all__ = ["ARCHITECTURES", "POINTS", "EXTRACTION_POINTS", "REGISTRY", "LossNetwork", "PerceptualLoss",
           "register_architecture", "list_points", "perceptual_distance", "feature_loss", "perceptual_sse"]
