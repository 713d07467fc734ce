"""dplib: deep perceptual loss networks, their benchmarks, and the paper's analysis.

    import dplib
    loss = dplib.PerceptualLoss("vgg16", "early")(output, target)

Laid out by reader. This top level is what a researcher imports into their own training code:
the loss networks (`lossnets`, `extended`), `losses`, `metrics`, `attributes`, `train`,
`models/` and `data/`. `dplib.benchmarks` serves the benchmark notebooks, `dplib.run` the
person operating a grid, `dplib.analysis` the reader of tables and figures; nothing outside
`dplib.run` imports it (tests/test_layout.py).

The names below load on first use (PEP 562): `import dplib` itself loads neither torch nor
torchvision, so the processes that need none of them (each grid run's own process, which only
drives papermill; `dplib grid status`) start in a fraction of the time. Touching any of them
loads the registry, with the networks beyond the paper's 14 and those DPLIB_NETWORKS names.
"""

import importlib

from .errors import install_in_ipython

__version__ = "0.1.0"
_EXPORTS = {"ARCHITECTURES": "lossnets", "POINTS": "lossnets", "EXTRACTION_POINTS": "lossnets", "REGISTRY": "lossnets",
            "LossNetwork": "lossnets", "register_architecture": "lossnets", "register_points": "lossnets",
            "list_points": "lossnets", "PerceptualLoss": "losses", "perceptual_distance": "losses",
            "feature_loss": "losses", "perceptual_sse": "losses", "PerceptualSimilarity": "similarity"}
__all__ = list(_EXPORTS)

install_in_ipython()  # in a notebook, errors a user fixes show as one line (dplib.errors)


def __getattr__(name):
    """dplib.LossNetwork and the other names above, and any submodule (dplib.lossnets), on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as missing:
        if missing.name != f"{__name__}.{name}":
            raise  # a submodule that exists but needs something missing: that error, not this one
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
