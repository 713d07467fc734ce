"""The benchmarks, one module each, named as the notebooks name them: the paper's four and a
fifth made with `dplib new-benchmark` (the worked example of a task of one's own):

    b1  perceptual similarity on BAPPS (Eq. 1, 2AFC and JND)        notebooks/b1_perceptual_similarity.ipynb
    b2  super-resolution x4 / x8 with Eq. 3 (PSNR, SSIM)             notebooks/b2_super_resolution.ipynb
    b3  road delineation with an iterative U-Net and Eq. 5           notebooks/b3_delineation.ipynb
    b4  autoencoder embeddings with Eq. 6, and the companion papers' notebooks/b4_autoencoding.ipynb
        procedures (I-I-PW ... F-F-FP, VAEs, 003's predictor search), apart
        by paper: b4_procedures (004), b4_predictors (the paper's MLPs and
        003's search), b4_decoder_retraining (003's Table VIII)
    b5  image denoising with a DnCNN (Gaussian noise, sigma 25/255)    notebooks/b5_denoising.ipynb

Each benchmark is a record (`Benchmark`): its notebook, params file, datasets, the scores its
runs write (name, direction, datasets, scales) and the paper items it feeds. Collecting, the
tables, the figures and the explorer read the records, never a list of their own. Benchmarks
beyond these live anywhere: a module defining `BENCHMARK = Benchmark(...)`, found through the
entry point group "dplib.benchmarks" or a folder named in DPLIB_BENCHMARKS (os.pathsep-separated;
`dplib grid` adds the folder of a params file whose benchmark sits beside it).

Each module holds its benchmark's protocol helpers (losses, validation, evaluation) and its
score rows; `record` is the run record every benchmark notebook writes (result.json);
`tutorials` the tiny live versions the teaching notebooks run. The benchmarks use the
library (dplib's top level); the grid runner (dplib.run) uses them, never the other way.
"""

import importlib
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from ..errors import InputError, MissingData

DIRECTIONS = ("higher", "lower")  # which way a score is better
ENTRY_POINTS = "dplib.benchmarks"  # a package's entry point: name = "package.module:BENCHMARK"
PATH_VARIABLE = "DPLIB_BENCHMARKS"  # folders holding benchmark modules, os.pathsep-separated


@dataclass(frozen=True)
class Score:
    """One score a benchmark's runs write, as rows `score_row(benchmark, name, value, dataset, scale)`."""

    name: str                # "psnr"
    direction: str           # "higher" or "lower" is better
    datasets: tuple          # the `dataset` values it splits into ("" for none)
    scales: tuple = ("",)    # the `scale` values ("" for none; b2: 4 and 8)
    label: str = ""          # what it measures, for a reader
    optional: bool = False   # written by some runs only (b4's linear_accuracy: 003's predictor search)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark as the grid, the data commands, the checks and the analysis see it."""

    name: str                # as params files and score rows name it (`benchmark: b2`)
    title: str               # "super-resolution"
    module: str              # its code: the functions of dplib.benchmarks.contract
    notebook: str            # relative to the repository root (or to its folder, for one outside it)
    params: str              # its params file, likewise
    datasets: tuple          # the datasets its runs read (dplib.data.registry); () for its own
    scores: tuple            # its Scores
    paper_items: tuple = ()  # the paper's tables and figures it feeds ("table_6", "fig_2")
    headline: str = ""       # its score key in the per-point figure (Fig. 2); default: the first score's first cell
    root: str = field(default="", compare=False)  # the folder notebook and params are relative to

    def code(self):
        return importlib.import_module(self.module)

    def call(self, name, parameters):
        """One function of the benchmark contract (dplib.benchmarks.contract) for one run."""
        from .contract import call

        return call(self.code(), name, parameters)

    def data_needs(self, parameters):
        """{dataset: needs} of one run with these notebook parameters."""
        return self.call("data_needs", parameters)

    def data_roots(self, parameters):
        """{dataset: folder} of one run (the contract's optional data_roots: B1 beyond BAPPS reads
        its datasets from folders of their own; else data_root for every one)."""
        return self.call("data_roots", parameters)

    def score(self, name):
        """The Score called `name`, or None."""
        return next((s for s in self.scores if s.name == name), None)

    def headline_key(self):
        """'b2 ssim bsd100 x4': the score Fig. 2 draws for this benchmark."""
        from .record import score_key

        score = self.scores[0]
        return self.headline or score_key((self.name, score.name, score.datasets[0], score.scales[0]))

    def path(self, relative):
        """A path of the record (notebook, params) as the files are laid out."""
        return Path(self.root) / relative if self.root else Path(relative)


def _load(module_name, attribute="BENCHMARK"):
    record = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(record, Benchmark):
        raise TypeError(f"{module_name}.{attribute} is not a dplib.benchmarks.Benchmark record")
    return record


def _from_folders():
    """Benchmarks in the folders of DPLIB_BENCHMARKS: each `<name>.py` there defining BENCHMARK."""
    found = []
    for folder in filter(None, os.environ.get(PATH_VARIABLE, "").split(os.pathsep)):
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise MissingData(f"{PATH_VARIABLE} names {folder}, which is no folder")
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))  # its module imports as `<name>`, here and in a run's kernel
        for module in sorted(folder.glob("*.py")):
            if not module.name.startswith(("test_", "_")) and "BENCHMARK = Benchmark(" in module.read_text():
                record = _load(module.stem)
                found.append(record if record.root else replace(record, root=str(folder)))
    return found


def _from_entry_points():
    from importlib.metadata import entry_points

    return [_load(*point.value.split(":")) for point in entry_points(group=ENTRY_POINTS)]


BUILT_IN = ("b1", "b2", "b3", "b4", "b5")  # each module's BENCHMARK, beside its code


def _built_in():
    return tuple(_load(f"dplib.benchmarks.{name}") for name in BUILT_IN)


_KNOWN = {}  # DPLIB_BENCHMARKS -> {name: Benchmark}: the records are read once per setting


def all_benchmarks():
    """{name: Benchmark} of every benchmark known here: the built-in ones (b1 ... b5, in order),
    then those of entry points and of DPLIB_BENCHMARKS folders. A name given twice is an error."""
    return dict(_records())


def _records():
    """The records as read for the current DPLIB_BENCHMARKS (not to be changed by callers)."""
    setting = os.environ.get(PATH_VARIABLE, "")
    if setting not in _KNOWN:
        _KNOWN[setting] = _gather()
    return _KNOWN[setting]


def _gather():
    found = {}
    for record in (*_built_in(), *_from_entry_points(), *_from_folders()):
        if record.name in found and found[record.name] != record:
            raise InputError(f"two benchmarks are called {record.name!r} ({found[record.name].module} and "
                             f"{record.module}): rename one")
        found[record.name] = record
    return found


def benchmark(name):
    """The benchmark called `name`, or None for a grid of a notebook that is no benchmark."""
    return _records().get(name)


def add_folder(folder):
    """Make the benchmarks of `folder` known here and to the processes started from here (grid
    workers, Slurm jobs, notebook kernels: DPLIB_BENCHMARKS, and PYTHONPATH for `import NAME`)."""
    folder = str(Path(folder).resolve())
    for variable in (PATH_VARIABLE, "PYTHONPATH"):
        folders = [f for f in os.environ.get(variable, "").split(os.pathsep) if f]
        if folder not in folders:
            os.environ[variable] = os.pathsep.join([*folders, folder])


def benchmark_order(names):
    """Benchmark names in the records' order (b1 ... b5, then others sorted): table columns."""
    known = list(_records())
    names = set(names)
    return [n for n in known if n in names] + sorted(names - set(known))


def direction(benchmark_name, score_name):
    """"higher" or "lower" is better for this score; "higher" for scores no record declares
    (a grid of a notebook that is no benchmark)."""
    record = benchmark(benchmark_name)
    score = record.score(score_name) if record else None
    return score.direction if score else "higher"


# ----- the contract a benchmark keeps (`dplib benchmark check NAME`) ----------------------------

NAME_PATTERN = r"[a-z][a-z0-9_]*"


def check_record(record):
    """What breaks the contract in a record, its files and its code: a list of one-line errors
    ([] when it holds)."""
    import re

    errors = []
    if not re.fullmatch(NAME_PATTERN, record.name):
        errors.append(f"the name {record.name!r} must be lower-case letters, digits and _ (a module's name)")
    names = [score.name for score in record.scores]
    if not names:
        errors.append(f"{record.name} declares no score: give Score(name, direction, datasets) records")
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"{record.name} declares the score {name!r} twice")
    for score in record.scores:
        if score.direction not in DIRECTIONS:
            errors.append(f"{record.name}'s score {score.name!r} has the direction {score.direction!r}: "
                          "give 'higher' or 'lower' (which way the score is better)")
        if not score.datasets:
            errors.append(f"{record.name}'s score {score.name!r} names no dataset: give ('',) for none")
    from . import contract

    try:
        code = record.code()
        errors += [f"{record.module} lacks {name}(parameters), which the grid calls" for name in contract.missing(code)]
    except ImportError as error:
        errors.append(f"{record.module} cannot be imported: {error}")
    errors += _check_files(record)
    return errors


def _check_files(record):
    import yaml

    from ..notebook import notebook_contract

    notebook, params = record.path(record.notebook), record.path(record.params)
    errors = [f"{record.name}'s {what} {path} does not exist" for what, path in
              (("notebook", notebook), ("params file", params)) if not path.is_file()]
    if errors:
        return errors
    from .contract import NOTEBOOK_PARAMETERS

    errors += notebook_contract(notebook, NOTEBOOK_PARAMETERS)
    spec = yaml.safe_load(params.read_text()) or {}
    if spec.get("benchmark") != record.name:
        errors.append(f"{params} says benchmark {spec.get('benchmark')!r}, its record {record.name!r}")
    if not (spec.get("smoke") or {}).get("parameters"):
        errors.append(f"{params} has no smoke block (smoke: parameters: ...): the smoke grid shrinks sizes there")
    return errors


def check_rows(record, rows, require_all=True):
    """What breaks the contract in score rows (result.json's `scores`, or a collected grid's rows):
    a list of one-line errors. A row must name this benchmark and a declared score, dataset and
    scale; with require_all, every score the record declares (but optional ones) must have rows."""
    from .record import scale_of

    errors, seen = [], set()
    for row in rows:
        score = record.score(row.get("score"))
        scale = scale_of(row.get("scale"))
        if row.get("benchmark") != record.name:
            errors.append(f"a row names the benchmark {row.get('benchmark')!r}, not {record.name!r}")
        elif score is None:
            errors.append(f"unknown score {row.get('score')!r} in {record.name}'s rows: the record declares "
                          f"{', '.join(s.name for s in record.scores)}; declare it or rename it")
        elif row.get("dataset", "") not in score.datasets:
            errors.append(f"{record.name}'s score {score.name!r} has a row for the dataset {row.get('dataset')!r}, "
                          f"which its record does not list ({', '.join(map(repr, score.datasets))})")
        elif scale not in score.scales:
            errors.append(f"{record.name}'s score {score.name!r} has a row at scale {scale!r}, which its record "
                          f"does not list ({', '.join(map(repr, score.scales))})")
        seen.add(row.get("score"))
    errors += [f"{record.name}'s runs wrote no {score.name!r} score, which its record declares (missing score)"
               for score in record.scores if require_all and not score.optional and score.name not in seen]
    return list(dict.fromkeys(errors))


# ----- a benchmark's own choices, checked before any run starts --------------------------------
# Each module's check_parameters(parameters) -> [(parameter, problem)] is called by the grid for
# every run (dplib.run.plan), so a value that no run can use is refused with the place it stands
# in the params file, not found inside a kernel. A table of choices does most of it:
#   {parameter: allowed values (a tuple), each(allowed) for a list of them, or a function that
#    raises InputError}

def each(allowed):
    """A list parameter whose every item must be one of `allowed` (and which may not be empty)."""
    return ("each", tuple(allowed))


def positive(value):
    if value <= 0:
        raise InputError(f"must be above 0, got {value!r}")


def not_negative(value):
    if value < 0:
        raise InputError(f"must be 0 or more, got {value!r}")


def device_choice(value):
    if value not in ("auto", "cpu", "cuda") and not str(value).startswith("cuda:"):
        raise InputError(f"unknown device {value!r}; choose auto, cpu, cuda or cuda:N")


def precision_choice(value):
    from ..device import autocast_dtype

    autocast_dtype(value, "the precision")


COMMON_CHOICES = {"device": device_choice, "amp": precision_choice, "autocast": precision_choice,
                  "num_workers": not_negative, "batch_size": positive}


def check_choices(parameters, choices):
    """[(parameter, problem)] of the parameters whose values are not among their choices (with
    COMMON_CHOICES: device, precision, workers, batch size)."""
    problems = []
    for name, allowed in {**COMMON_CHOICES, **choices}.items():
        if name not in parameters:
            continue
        value = parameters[name]
        if callable(allowed):
            try:
                allowed(value)
            except InputError as error:
                problems.append((name, str(error)))
        elif isinstance(allowed, tuple) and allowed[:1] == ("each",):
            unknown = [v for v in value if v not in allowed[1]]
            if unknown or not value:
                problems.append((name, f"{'has ' + repr(unknown) if unknown else 'is empty'}; choose among "
                                       f"{', '.join(map(str, allowed[1]))}"))
        elif value not in allowed:
            problems.append((name, f"unknown value {value!r}; choose one of {', '.join(map(str, allowed))}"))
    return problems
