"""The datasets by name, for `dplib data download|verify|fixtures NAME`: each one's download,
verification and fixture, and the benchmark whose notebook reads it.

What a download fetches is what a benchmark's runs read (`needs`, from the benchmark's
`data_needs(parameters)`), never defaults of its own; "embeddings" names SVHN and STL-10
together, as Benchmark 4's grid reads them.
"""

import functools
from dataclasses import dataclass
from typing import Callable

from . import bapps, embeddings, iqa, nights, roads, superres
from ..errors import InputError


@dataclass(frozen=True)
class Dataset:
    name: str
    benchmark: str           # the benchmark whose notebook reads it (its defaults give the default needs)
    download: Callable       # download(root, needs, progress=True) -> path
    verify: Callable         # verify(root, needs, full=False) -> [problem, ...]
    fixture: Callable        # fixture(root) -> root
    extra: dict = None       # needs added by `--all` (parts no benchmark run reads by default)


DATASETS = {
    "bapps": Dataset("bapps", "b1", bapps.download, bapps.verify, bapps.write_fixture,
                     extra=bapps.needs(two_afc_train=bapps.TRAIN_SUBSETS)),
    "superres": Dataset("superres", "b2", superres.download, superres.verify, superres.write_fixture),
    "roads": Dataset("roads", "b3", roads.download, roads.verify, roads.write_fixture),
    **{name: Dataset(name, "b4", functools.partial(embeddings.download, name=name),
                     functools.partial(embeddings.verify, name=name), functools.partial(embeddings.write_fixture, name=name))
       for name in ("svhn", "stl10")},
    # Benchmark 1 beyond BAPPS: the human-judgement datasets the field scores perceptual metrics on
    **{name: Dataset(name, "b1", functools.partial(iqa.download, name=name), functools.partial(iqa.verify, name=name),
                     functools.partial(iqa.write_fixture, name=name)) for name in iqa.NAMES},
    "nights": Dataset("nights", "b1", nights.download, nights.verify, nights.write_fixture),
}
ALIASES = {"embeddings": ("svhn", "stl10")}  # what Benchmark 4's grid reads, in one folder


def names(name):
    """The datasets a name stands for (an alias stands for several), or an error listing them."""
    if name in ALIASES:
        return ALIASES[name]
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of: {', '.join([*DATASETS, *ALIASES])}")
    return (name,)


def union(needs_list):
    """Needs of many runs as one: {key: set} merged key by key."""
    merged = {}
    for needs in needs_list:
        for key, values in needs.items():
            merged.setdefault(key, set()).update(values)
    return merged


def fixtures(name, root):
    for dataset in names(name):
        DATASETS[dataset].fixture(root)
    return root
