"""dplib: deep perceptual loss networks, their benchmarks, and the paper's analysis.

    import dplib
    loss = dplib.PerceptualLoss("vgg16", "early")(output, target)

Laid out by reader. This top level is what a researcher imports into their own training code:
the loss networks (`lossnets`, `extended`), `losses`, `metrics`, `attributes`, `train`,
`models/` and `data/`. `dplib.benchmarks` serves the benchmark notebooks, `dplib.run` the
person operating a grid, `dplib.analysis` the reader of tables and figures; nothing outside
`dplib.run` imports it (tests/test_layout.py).
"""

from .lossnets import (ARCHITECTURES, POINTS, EXTRACTION_POINTS, REGISTRY, LossNetwork, list_points,
                       register_architecture, register_points)
from .losses import PerceptualLoss, perceptual_distance, feature_loss, perceptual_sse
from .similarity import PerceptualSimilarity
from .errors import install_in_ipython
from . import extended  # noqa: F401  (registers the networks beyond the paper's 14 and timm's resolver)

extended.import_networks()  # networks of one's own, in the modules DPLIB_NETWORKS names

install_in_ipython()  # in a notebook, errors a user fixes show as one line (dplib.errors)

__version__ = "0.1.0"
__all__ = ["ARCHITECTURES", "POINTS", "EXTRACTION_POINTS", "REGISTRY", "LossNetwork", "PerceptualLoss", "PerceptualSimilarity",
           "register_architecture", "register_points", "list_points", "perceptual_distance", "feature_loss", "perceptual_sse"]
