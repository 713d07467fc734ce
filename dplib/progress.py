"""Progress bars for long steps (attribute measurement, distances, training, downloads): a
live widget in JupyterLab, plain text lines everywhere else.

    from dplib.progress import tqdm
    for batch in tqdm(loader, desc="distances"): ...

Under papermill (and nbconvert), nobody watches a widget, and a saved notebook would hold
one widget view per bar; so there the bar is plain text, written at most every
HEADLESS_INTERVAL_S seconds. A headless run is recognised by the option nbclient starts
its kernels with (--HistoryManager.hist_file=:memory:), which a JupyterLab kernel lacks.
"""

import sys

from tqdm import std as _std
from tqdm.auto import tqdm as _auto

HEADLESS_INTERVAL_S = 30


def headless():
    """Whether this process is a kernel executed by nbclient (papermill, nbconvert)."""
    return any(arg.startswith("--HistoryManager.hist_file=:memory:") for arg in sys.argv)


def tqdm(*args, **kwargs):
    """tqdm.auto's bar, or a plain-text one with sparse updates in a headless kernel."""
    if headless():
        kwargs.setdefault("mininterval", HEADLESS_INTERVAL_S)
        kwargs.setdefault("file", sys.stdout)
        kwargs.setdefault("ascii", True)
        kwargs.pop("dynamic_ncols", None)
        return _std.tqdm(*args, **kwargs)
    return _auto(*args, **kwargs)
