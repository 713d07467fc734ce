"""Errors a user fixes (a dataset not downloaded, weights that cannot be fetched offline, a
params file or a value that is wrong): their message says what is wrong and what to do, and a
notebook or the `dplib` command shows just that one line. Anything else is a bug, and keeps its
traceback (the command says so).

In an IPython kernel (JupyterLab, papermill), `import dplib` registers a handler that
shows these errors as one line instead of pages of chained traceback; the cell still fails
(papermill and the grid record the error's name and message). Other errors keep their
full traceback.
"""


class UserError(Exception):
    """Base of the errors whose message is all a user needs."""


class MissingData(UserError, FileNotFoundError):
    """A dataset (or part of one), or a weights file, is not where it was looked for; the
    message names the command or the place that fixes it."""


class WeightsUnavailable(UserError, RuntimeError):
    """Pretrained weights could not be loaded (offline, or no such file); the message says what to do."""


class InputError(UserError, ValueError):
    """A value given to dplib (an argument, a parameter, a flag) is not one it takes; the message
    names the value and what it takes."""


class ParamsError(InputError):
    """A params file (or an axis file) says something the grid cannot run: an unknown key, a value
    of the wrong type, an architecture or point that does not exist. Raised before any run starts."""


class Unavailable(UserError, RuntimeError):
    """Something this machine lacks that was asked for: a CUDA GPU, a Slurm controller, an optional
    package (the message names the extra to install)."""


def _show_briefly(shell, etype, value, tb, tb_offset=None):
    shell.showtraceback((etype, value, tb), exception_only=True)


def install_in_ipython():
    """In an IPython kernel, show UserErrors as one line (see the module docstring)."""
    import sys

    if "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((UserError,), _show_briefly)
    return True
