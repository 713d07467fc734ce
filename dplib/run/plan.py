"""A grid's params file read and expanded: params/<name>.yaml -> the runs of its grid.

A params file holds the grid axes, time limits, Slurm resources and a smoke block; a
notebook's `parameters` cell holds every default (the one place defaults live). A run's
parameters are the notebook's defaults, then the params file's, then the run's axis values.
"""

import copy
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml


def load_spec(params_path, smoke=False, timeout_run=None, slurm_overrides=None, grid_file=None):
    """Read params/bN.yaml; with smoke, apply its `smoke` block (which only shrinks sizes).

    Keys: benchmark, notebook, parameters (the paper's settings), axes (grid axes; the
    value "grid" takes the list from grid.yaml beside it), timeouts {cell_s, run_s},
    smoke {parameters, axes, timeouts}, slurm (submitit resources); optional: name (of the
    runs folder and the collected CSV, default the benchmark's: a companion paper's grid
    runs the B4 notebook under its own name) and collect ({column: dotted path into each
    run's result.json}, extra columns of the collected CSV, e.g. z: params.embedding_size) and exclude
    ([{axis: value or [values]}], combinations of axis values left out of the product, e.g.
    {dataset: svhn, embedding_size: [256, 512]} when one dataset has its own z list). timeout_run replaces
    timeouts.run_s; slurm_overrides ({key: value}) replace slurm keys. Slurm's own time
    limit, when the block does not set one, is run_s plus 10 minutes. grid_file: the axis file
    "grid" refers to (default: grid.yaml beside the params file; grid_extended.yaml lists the
    networks beyond the paper's 14).
    """
    params_path = Path(params_path)
    if not params_path.is_file():
        raise FileNotFoundError(f"no params file at {params_path}; the benchmarks' files are params/b1.yaml ... b4.yaml")
    spec = yaml.safe_load(params_path.read_text())
    for key in ("benchmark", "notebook", "parameters", "axes"):
        if key not in spec:
            raise ValueError(f"{params_path} lacks the key {key!r}")
    named = grid_file is not None
    grid_file = Path(grid_file) if grid_file else params_path.parent / "grid.yaml"
    if named and not grid_file.is_file():
        raise FileNotFoundError(f"no axis file at {grid_file}; --grid names another (params/grid_extended.yaml)")
    # no grid.yaml beside the params file (a benchmark of one's own, in its own folder): the paper's grid
    shared = yaml.safe_load(grid_file.read_text()) if grid_file.is_file() else paper_grid()
    spec = copy.deepcopy(spec)
    _find_benchmark_beside(spec, params_path)
    if smoke:
        block = spec.get("smoke") or {}
        spec["parameters"].update(block.get("parameters", {}))
        spec["axes"].update(block.get("axes", {}))
        spec.setdefault("timeouts", {}).update(block.get("timeouts", {}))
    spec["timeouts"] = _timeouts(spec.get("timeouts") or {}, timeout_run, params_path)
    spec["slurm"] = dict(spec.get("slurm") or {}, **(slurm_overrides or {}))
    run_s = spec["timeouts"]["run_s"]
    spec["slurm"].setdefault("timeout_min", math.ceil(run_s / 60) + 10 if run_s else 60 * 24)
    if run_s and spec["slurm"]["timeout_min"] * 60 < run_s:
        raise ValueError(f"slurm.timeout_min ({spec['slurm']['timeout_min']} min) is shorter than timeouts.run_s "
                         f"({run_s} s): Slurm would kill runs before their own limit; raise it or leave it unset")
    for axis, values in spec["axes"].items():
        if values == "grid":
            if axis not in shared:
                raise ValueError(f"axis {axis!r} says 'grid' but {grid_file} has no {axis!r} list")
            spec["axes"][axis] = list(shared[axis])
        elif not isinstance(values, list) or not values:
            raise ValueError(f"axis {axis!r} in {params_path} must be a non-empty list or 'grid'")
    spec.setdefault("name", spec["benchmark"])
    collect_columns = spec.setdefault("collect", {})
    if not isinstance(collect_columns, dict) or not all(isinstance(v, str) for v in collect_columns.values()):
        raise ValueError(f"collect in {params_path} must map column names to dotted paths in result.json, "
                         f"e.g. {{z: params.embedding_size}}")
    # An axis file may add axes to every benchmark (params/grid_pretraining.yaml: weights), with
    # exclusions of its own; each added axis is collected as a column of the results.
    added = shared.get("axes") or {}
    for axis, values in added.items():
        if axis in spec["axes"] or not isinstance(values, list) or not values:
            raise ValueError(f"{grid_file} adds the axis {axis!r}: give it a non-empty list, and one that "
                             f"{params_path} has not already")
        spec["axes"][axis] = list(values)
        collect_columns.setdefault(axis, f"params.{axis}")
    rules = (spec.get("exclude") or []) + (shared.get("exclude") or [] if added else [])
    spec["exclude"] = _exclusions(rules, spec["axes"], params_path)
    spec["smoke"] = smoke
    spec["path"] = str(params_path)
    return spec


def paper_grid():
    """The paper's 14 architectures x 4 points (Table II), as params/grid.yaml lists them."""
    from ..lossnets import ARCHITECTURES, POINTS

    return {"arch": list(ARCHITECTURES), "point": list(POINTS)}


def _find_benchmark_beside(spec, params_path):
    """A benchmark in a folder of its own (`dplib new-benchmark`): its notebook path is relative
    to the params file, and its module beside it becomes known here and to the runs' kernels."""
    from ..benchmarks import add_folder

    folder = params_path.resolve().parent
    notebook = Path(spec["notebook"])
    if not notebook.is_absolute() and not notebook.is_file() and (folder / notebook).is_file():
        spec["notebook"] = str(folder / notebook)
    if (folder / f"{spec['benchmark']}.py").is_file():
        add_folder(folder)


def _exclusions(rules, axes, params_path):
    """[{axis: set of slugs}] from the params file's `exclude` list, checked against the axes."""
    if not isinstance(rules, list) or not all(isinstance(r, dict) and r for r in rules):
        raise ValueError(f"exclude in {params_path} must be a list of {{axis: value or [values]}}, "
                         f"e.g. [{{dataset: svhn, embedding_size: [256, 512]}}]")
    checked = []
    for rule in rules:
        unknown = set(rule) - set(axes)
        if unknown:
            raise ValueError(f"exclude in {params_path} names {sorted(unknown)}, which is not a grid axis; "
                             f"axes: {sorted(axes)}")
        checked.append({axis: {_slug(v) for v in (values if isinstance(values, list) else [values])}
                        for axis, values in rule.items()})
    return checked


def _timeouts(timeouts, timeout_run, params_path):
    unknown = set(timeouts) - {"cell_s", "run_s"}
    if unknown:
        raise ValueError(f"{params_path}: timeouts has {sorted(unknown)}; it takes cell_s and run_s (seconds)")
    timeouts = {"cell_s": timeouts.get("cell_s"), "run_s": timeout_run if timeout_run is not None else timeouts.get("run_s")}
    for key, value in timeouts.items():
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            raise ValueError(f"timeouts.{key} must be a positive number of seconds, got {value!r}")
    return timeouts


def parse_assignments(items, option="--slurm"):
    """['gpus_per_node=0', 'mem_gb=8'] -> {'gpus_per_node': 0, 'mem_gb': 8} (values read as YAML)."""
    parsed = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{option} takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def _slug(value):
    if isinstance(value, (list, tuple)):
        return "-".join(_slug(v) for v in value)
    return re.sub(r"[^A-Za-z0-9._]+", "-", str(value)).strip("-")


def run_id(axis_values, parameters):
    """Readable axis values plus a hash of every parameter: stable across reruns."""
    digest = hashlib.sha1(json.dumps(parameters, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return "_".join([_slug(v) for v in axis_values] + [digest])


@dataclass
class Run:
    benchmark: str
    notebook: str
    run_id: str
    parameters: dict
    directory: Path


def runs_root(spec, runs_dir=None):
    base = Path(runs_dir) if runs_dir else Path("runs") / ("smoke" if spec["smoke"] else "")
    return base / spec["name"]


def expand(spec, only=None, runs_dir=None):
    """Every run of the grid (the cartesian product of the axes less the params file's
    `exclude` combinations), filtered by `only` ({axis: [allowed values as strings]}). A run's
    parameters are the notebook's defaults, then the params file's, then the run's axis values:
    all of them are in its id's hash, so a changed default gives new runs rather than reusing
    old ones."""
    axes = spec["axes"]
    defaults = notebook_defaults(spec["notebook"])
    only = only or {}
    unknown = set(only) - set(axes) - set(spec["parameters"]) - set(defaults)
    if unknown:
        raise ValueError(f"--only names {sorted(unknown)}, which is not a grid axis; axes: {sorted(axes)}")
    # a value matches as typed or as YAML reads it: --only variational=false selects False
    allowed = {k: {_slug(v) for v in values} | {_slug(yaml.safe_load(str(v))) for v in values}
               for k, values in only.items()}
    root = runs_root(spec, runs_dir)
    runs = []
    for values in itertools.product(*axes.values()):
        parameters = {**defaults, **spec["parameters"], **dict(zip(axes, values))}
        parameters.pop("out_dir", None)
        if any(_slug(parameters[k]) not in slugs for k, slugs in allowed.items()):
            continue
        if any(all(_slug(parameters[axis]) in slugs for axis, slugs in rule.items())
               for rule in spec.get("exclude", [])):
            continue
        identifier = run_id(values, parameters)
        directory = (root / identifier).resolve()
        parameters["out_dir"] = str(directory)
        runs.append(Run(spec["benchmark"], spec["notebook"], identifier, parameters, directory))
    if only and not runs:
        choices = "; ".join(f"{k}: {', '.join(_slug(v) for v in axes[k])}" for k in only if k in axes)
        raise ValueError(f"--only {only} matches no run of the grid{f' (its values: {choices})' if choices else ''}")
    return runs


def notebook_parameters(notebook):
    """{name: papermill's parameter record} of a notebook's `parameters` cell."""
    import papermill

    if not Path(notebook).is_file():
        raise FileNotFoundError(f"notebook {notebook} not found (paths are relative to where you run dplib)")
    return papermill.inspect_notebook(str(notebook))


def notebook_defaults(notebook):
    """{name: default value} of a notebook's `parameters` cell: the one place defaults live."""
    import ast

    defaults = {}
    for name, record in notebook_parameters(notebook).items():
        try:
            defaults[name] = ast.literal_eval(record["default"])
        except (ValueError, SyntaxError):
            raise ValueError(f"{notebook}: the default of {name!r} ({record['default']}) is not a literal; "
                             "parameters cells hold literal values only") from None
    return defaults


def check_parameters(spec):
    """Stop before anything runs if a grid key is not a parameter of the notebook."""
    known = notebook_parameters(spec["notebook"])
    keys = set(spec["parameters"]) | set(spec["axes"]) | {"out_dir"}
    unknown = sorted(keys - set(known))
    if unknown:
        raise ValueError(f"{spec['path']}: {', '.join(map(repr, unknown))} is not a parameter of {spec['notebook']}; "
                         f"its parameters are: {', '.join(sorted(known))}")


def parse_only(text):
    """'arch=vgg16|alexnet,point=late' -> {'arch': ['vgg16', 'alexnet'], 'point': ['late']}."""
    if not text:
        return None
    only = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError(f"--only takes key=value pairs separated by commas, got {part!r}")
        key, value = part.split("=", 1)
        only[key.strip()] = [v.strip() for v in value.split("|")]
    return only
