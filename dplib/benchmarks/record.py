"""Results are data: run records, tidy score tables, and the paper's published scores.

Every score, ours or the paper's, is one row of a tidy table with the columns SCORE_COLUMNS:

    benchmark  b1 | b2 | b3 | b4
    score      2afc, jnd_map (b1); psnr, ssim (b2); correctness, completeness, quality,
               and *_slack3 (b3, percent as Table X); accuracy (b4)
    dataset    BAPPS subset or "all" (b1); set5, set14, bsd100 (b2); mrd (b3); svhn, stl10 (b4)
    scale      4 or 8 for b2, empty otherwise
    arch       torchvision's name;  point: early, semi_early, mid, late
    value      the number;  note: anything a reader must know about it

A run's notebook writes `result.json` (scores + params + timings + versions) with
`write_result`; `dplib grid collect` gathers them into results/<benchmark>.csv, read back
by `load_results` in the same columns as `load_paper_scores`.
"""

import contextlib
import platform
import socket
import subprocess
import time
from pathlib import Path

from ..atomic import write_json_atomic
from ..errors import InputError

SCORE_COLUMNS = ["benchmark", "score", "dataset", "scale", "arch", "point", "value", "note"]
KEY = ["benchmark", "score", "dataset", "scale"]  # what names a score, apart from the loss network
RESULT = "result.json"  # the record a run leaves behind; dplib.run.folder finds it by this name


def git_commit():
    """The repository's current commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions():
    """The versions of Python and the packages a run computes with. A run's own process (which
    drives papermill) says what its kernel loads without loading torch itself: torch's and
    torchvision's as their builds wrote them to version.py ("2.14.1+cu130", as torch.__version__),
    the CUDA torch was built for (torch.version.cuda), numpy's from its installed distribution."""
    from importlib.metadata import version

    from .. import __version__

    return {"python": platform.python_version(), "torch": _built("torch", "__version__"),
            "torchvision": _built("torchvision", "__version__"), "numpy": version("numpy"), "dplib": __version__,
            "cuda": _built("torch", "cuda")}


def _built(package, name):
    """A constant of `package`'s version.py (torch.version.cuda, torchvision.__version__), read
    without importing the package; None where it is not a plain constant."""
    import ast
    import importlib.util

    try:
        tree = ast.parse((Path(importlib.util.find_spec(package).origin).parent / "version.py").read_text())
    except (AttributeError, OSError, SyntaxError, TypeError):
        return None
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign)
                                                                      else None)
        if isinstance(target, ast.Name) and target.id == name and isinstance(node.value, ast.Constant):
            return node.value.value
    return None


def environment():
    """Where and with what a run ran: host, git commit, package versions."""
    return {"host": socket.gethostname(), "git_commit": git_commit(), "versions": versions()}


class Timer:
    """Wall time per named phase: `with timer("train"): ...`; `timer.seconds` is the record."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, phase):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


def scale_of(value):
    """A row's scale: "" for none (None, "", NaN, pandas' NA), else an int (4 for 4.0)."""
    return "" if value is None or str(value) in ("", "nan", "<NA>") else int(value)


def score_key(row):
    """'b2 psnr set5 x4' for a score row (or a tuple of its KEY fields): how tables, figures and
    records name a score."""
    benchmark, score, dataset, scale = (row[k] for k in KEY) if not isinstance(row, tuple) else row
    scale = scale_of(scale)
    return f"{benchmark} {score} {dataset}{f' x{scale}' if scale != '' else ''}".strip()


def score_row(benchmark, score, value, dataset="", scale="", arch="", point="", note=""):
    return dict(benchmark=benchmark, score=score, dataset=dataset, scale=scale, arch=arch, point=point,
                value=float(value), note=note)


_NOT_PARAMETERS = {"In", "Out", "exit", "quit", "get_ipython"}


def _plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def notebook_parameters(namespace):
    """The parameters a notebook runs with: its global variables holding plain values (strings,
    numbers, booleans, None, and lists or dicts of them). Call it first thing after the
    parameters cell, as `parameters = notebook_parameters(globals())`: then those are exactly
    the defaults of the `parameters` cell with papermill's injected values applied."""
    return {k: v for k, v in namespace.items() if not k.startswith("_") and k not in _NOT_PARAMETERS and _plain(v)}


def write_result(out_dir, benchmark, scores, params, timings=None, extra=None):
    """Write out_dir/result.json: the run record a notebook's last cell leaves behind.

    scores: rows from `score_row`; params: the notebook's parameters (`notebook_parameters`);
    timings: seconds per phase.
    """
    for row in scores:
        missing = set(SCORE_COLUMNS) - set(row)
        if missing:
            raise InputError(f"score row {row} lacks {sorted(missing)}; build rows with dplib.benchmarks.record.score_row")
    record = {"benchmark": benchmark, "scores": list(scores), "params": params, "timings": timings or {},
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **environment(), **(extra or {})}
    write_json_atomic(Path(out_dir) / RESULT, record)
    return record


def plot_curve(out_dir, title=""):
    """The run's training curve from its metrics.jsonl (dplib.metrics_log): the mean training loss
    per logging interval and, on a second axis, the validation score; saved as out_dir/curve.png
    beside the other run files. None when the run logged nothing."""
    from ..extras import require
    from ..metrics_log import METRICS, read

    require("the training curve", "matplotlib")
    import matplotlib.pyplot as plt

    lines = read(Path(out_dir) / METRICS)
    if not lines:
        return None
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.plot([line["step"] for line in lines], [line["loss"] for line in lines], color="tab:blue", label="loss")
    axis.set(xlabel="step", ylabel="training loss (interval mean)", title=title)
    validated = [line for line in lines if line.get("validation") is not None]
    if validated:
        other = axis.twinx()
        other.plot([line["step"] for line in validated], [line["validation"] for line in validated], "o-",
                   color="tab:orange", label="validation")
        other.set_ylabel("validation score")
    figure.tight_layout()
    figure.savefig(Path(out_dir) / "curve.png", dpi=100)
    return figure
