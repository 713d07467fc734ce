"""Which extra brings which package: `pip install dplib` is the core (the loss networks, losses,
metrics, similarity, calibration); the rest comes with an extra named by its reader:

    pip install 'dplib[run]'        the grid: params files, papermill, notebook kernels, Slurm, fixtures
    pip install 'dplib[analysis]'   the tables and figures: pandas, matplotlib, seaborn
    pip install 'dplib[lab]'        JupyterLab, widgets (the explorer), outputs stripped on save
    pip install 'dplib[timm]'       timm models as loss networks ("timm:<name>")

A module or command that needs a missing one stops with one line naming the extra.
"""

import importlib.util

from .errors import UserError

PACKAGES = {  # import name -> the extra that installs it (pyproject.toml's optional-dependencies)
    "yaml": "run", "papermill": "run", "nbformat": "run", "jsonschema": "run", "ipykernel": "run",
    "tabulate": "run", "psutil": "run", "submitit": "run", "skimage": "run",
    "pandas": "analysis",  # the run extra has it too (collect)
    "matplotlib": "analysis", "seaborn": "analysis",
    "jinja2": "run",       # new-benchmark's template; the analysis extra has it too (pandas' LaTeX)
    "jupyterlab": "lab", "ipywidgets": "lab", "nbstripout": "lab", "playwright": "lab",
    "timm": "timm",
}


DISTRIBUTIONS = {"yaml": "pyyaml", "skimage": "scikit-image"}  # where pip's name differs


class MissingExtra(UserError, ImportError):
    """A part of dplib was used whose extra is not installed; the message names it."""


def message(package, what="this"):
    extra, name = PACKAGES.get(package), DISTRIBUTIONS.get(package, package)
    return (f"{what} needs {name}, which comes with the {extra!r} extra: pip install 'dplib[{extra}]'"
            if extra else f"{what} needs the package {name}: pip install {name}")


def require(what, *packages):
    """Stop with MissingExtra, one line, unless every package can be imported."""
    for package in packages:
        if importlib.util.find_spec(package) is None:
            raise MissingExtra(message(package, what))


def explain(error, what="this"):
    """A ModuleNotFoundError of an extra's package as a MissingExtra (None for any other module)."""
    package = (getattr(error, "name", None) or "").split(".")[0]
    return MissingExtra(message(package, what)) if package in PACKAGES else None
