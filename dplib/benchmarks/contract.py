"""What a benchmark provides, declared once: the module of a benchmark (b1.py ... b5.py, one made
by `dplib new-benchmark`) defines BENCHMARK (its record, dplib.benchmarks.Benchmark) and the
functions below, each of one run's notebook parameters; its notebook's `parameters` cell holds
NOTEBOOK_PARAMETERS. The record check (`dplib benchmark check`), the planner, the pre-flight
check, the data commands and the template read this module, never a list of their own.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class BenchmarkCode(Protocol):
    """The functions the grid calls (REQUIRED), each documented here once."""

    def data_needs(self, parameters):
        """{dataset: needs} of what one run reads (dplib.data.registry's datasets): the download,
        the verification and the pre-flight all take it from here."""

    def steps(self, parameters):
        """Optimizer steps of one run (B1: forward batches), for the time estimates."""

    def step_key(self, parameters):
        """Runs whose steps take the same time share a key; a device report measures one per key."""

    def disk_bytes(self, parameters):
        """(kept, while running) bytes on disk of one run: checkpoints and records; caches."""

    def check_parameters(self, parameters):
        """[(parameter, problem)] of values no run can use, checked for every run before any starts."""


REQUIRED = ("data_needs", "steps", "step_key", "disk_bytes", "check_parameters")
# What a module may provide besides, and what the grid assumes when it does not:
#   data_roots(p) -> {dataset: folder}: where each dataset is read (default: data_root for all)
#   other_networks(p) -> [(arch, weights)]: networks a run loads besides its loss network (B5's AlexNet)
#   uses_loss_network(p) -> bool: whether a run loads its loss network at all (default: yes)
#   build_model(p) -> nn.Module: the model a run trains (the notebook, the disk estimate, the bench scripts)
OPTIONAL = {
    "data_roots": lambda code, p: {dataset: p["data_root"] for dataset in code.data_needs(p)},
    "other_networks": lambda code, p: [],
    "uses_loss_network": lambda code, p: True,
    # required, but a benchmark written before it existed is planned without its checks
    # (`dplib benchmark check` names it missing)
    "check_parameters": lambda code, p: [],
}
NOTEBOOK_PARAMETERS = ("arch", ("point", "points"), "weights", "seed", "data_root", "device", "out_dir")


def call(code, name, parameters):
    """`code.name(parameters)`, or for an optional function the module lacks, its default."""
    function = getattr(code, name, None)
    if function is not None:
        return function(parameters)
    if name in OPTIONAL:
        return OPTIONAL[name](code, parameters)
    raise AttributeError(f"{code.__name__} lacks {name}(parameters), which the grid calls")


def missing(code):
    """The REQUIRED functions `code` lacks."""
    return [name for name in REQUIRED if not callable(getattr(code, name, None))]
