"""A grid's params file read and expanded: params/<name>.yaml -> the runs of its grid.

A params file holds the grid axes, time limits, Slurm resources and a smoke block; a
notebook's `parameters` cell holds every default (the one place defaults live). A run's
parameters are the notebook's defaults, then the params file's, then the run's axis values.
"""

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..extras import require

require("the grid (dplib.run)", "yaml", "papermill", "nbformat", "pandas")

import yaml  # noqa: E402
from ..errors import InputError, MissingData, ParamsError
from . import schema


def load_spec(params_path, smoke=False, timeout_run=None, slurm_overrides=None, grid_file=None):
    """Read params/bN.yaml, checked whole (dplib.run.schema); with smoke, apply its `smoke` block
    (which only shrinks sizes).

    Keys: benchmark, notebook, parameters (the paper's settings), axes (grid axes; the
    value "grid" takes the list from grid.yaml beside it), timeouts {cell_s, run_s},
    smoke {parameters, axes, timeouts}, slurm (submitit resources); optional: name (of the
    runs folder and the collected CSV, default the benchmark's: a companion paper's grid
    runs the B4 notebook under its own name), fixture (the dataset the smoke grid's fixture
    writes), collect ({column: dotted path into each run's result.json}, extra columns of the
    collected CSV, e.g. z: params.embedding_size) and exclude ([{axis: value or [values]}],
    combinations of axis values left out of the product, e.g. {dataset: svhn, embedding_size:
    [256, 512]} when one dataset has its own z list). Any other key, at any level, is refused;
    each value of a notebook parameter is coerced to its annotation or refused. timeout_run
    replaces timeouts.run_s; slurm_overrides ({key: value}) replace slurm keys. Slurm's own time
    limit, when the block does not set one, is run_s plus 10 minutes. grid_file: the axis file
    "grid" refers to (default: grid.yaml beside the params file; grid_extended.yaml lists the
    networks beyond the paper's 14).
    """
    params_path = Path(params_path)
    spec, types = _validated(params_path)
    grid_file, shared = _axis_file(params_path, grid_file)
    origins = {}
    spec["parameters"] = _typed_block(spec, "parameters", types, params_path, origins)
    axes = _typed_axes(spec["axes"], types, "axes", params_path)
    origins.update(dict.fromkeys(axes, "axes"))
    if smoke:
        spec["parameters"].update(_typed_block(spec["smoke"], "parameters", types, params_path, origins,
                                               "smoke.parameters"))
        smoke_axes = _typed_axes(spec["smoke"].get("axes") or {}, types, "smoke.axes", params_path)
        axes.update(smoke_axes)
        origins.update(dict.fromkeys(smoke_axes, "smoke.axes"))
        spec["timeouts"] = {**spec["timeouts"], **(spec["smoke"].get("timeouts") or {})}
    spec["timeouts"] = _timeouts(spec["timeouts"], timeout_run)
    spec["slurm"] = _slurm(spec["slurm"], slurm_overrides, spec["timeouts"]["run_s"])
    spec["axes"] = _grid_axes(axes, shared, types, origins, params_path, grid_file)
    spec.setdefault("name", spec["benchmark"])
    added = _added_axes(spec, shared, types, origins, params_path, grid_file)
    rules = spec["exclude"] + ((shared.get("exclude") or []) if added else [])
    spec["exclude"] = _exclusions(rules, spec["axes"], params_path)
    spec.update(origins=origins, smoke=smoke, path=str(params_path))
    return spec


def _validated(params_path):
    """(spec, {parameter: annotation}): the params file read and checked whole by its schema,
    every block present (empty when absent)."""
    if not params_path.is_file():
        raise MissingData(f"no params file at {params_path}; the benchmarks' files are params/b1.yaml ... b5.yaml")
    raw = _read_yaml(params_path)
    schema.validate(raw, {"type": "object", "required": list(schema.TOP_LEVEL_REQUIRED),
                          "properties": {"notebook": {"type": "string", "minLength": 1}}}, params_path)
    spec = copy.deepcopy(raw)
    _find_benchmark_beside(spec, params_path)
    declared = notebook_parameters(spec["notebook"])
    schema.validate(raw, schema.params_schema(declared), params_path, spec["notebook"])
    for key in ("parameters", "axes", "timeouts", "slurm", "collect", "exclude", "smoke"):
        spec[key] = spec.get(key) or ({} if key != "exclude" else [])
    return spec, {name: record["inferred_type_name"] for name, record in declared.items()}


def _axis_file(params_path, grid_file):
    """(path, contents) of the axis file "grid" refers to, checked by its schema."""
    named = grid_file is not None
    grid_file = Path(grid_file) if grid_file else params_path.parent / "grid.yaml"
    if named and not grid_file.is_file():
        raise MissingData(f"no axis file at {grid_file}; --grid names another (params/grid_extended.yaml)")
    # no grid.yaml beside the params file (a benchmark of one's own, in its own folder): the paper's grid
    shared = _read_yaml(grid_file) if grid_file.is_file() else paper_grid()
    schema.validate(shared, schema.axis_file_schema(), grid_file)
    return grid_file, shared


def _typed_block(block, key, types, params_path, origins, label=None):
    """A block's parameters coerced to their annotations, their place recorded in `origins`."""
    typed = schema.typed_values(block.get(key) or {}, types, label or key, params_path)
    origins.update(dict.fromkeys(typed, label or key))
    return typed


def _slurm(block, overrides, run_s):
    """The Slurm resources with --slurm's overrides; its time limit run_s plus 10 minutes unless set."""
    _check_slurm_overrides(overrides)
    slurm = dict(block, **(overrides or {}))
    slurm.setdefault("timeout_min", math.ceil(run_s / 60) + 10 if run_s else 60 * 24)
    if run_s and slurm["timeout_min"] * 60 < run_s:
        raise ParamsError(f"slurm.timeout_min ({slurm['timeout_min']} min) is shorter than timeouts.run_s "
                          f"({run_s} s): Slurm would kill runs before their own limit; raise it or leave it unset")
    return slurm


def _grid_axes(axes, shared, types, origins, params_path, grid_file):
    """Each axis that says "grid" replaced by the axis file's list (its values typed)."""
    for axis, values in axes.items():
        if values == "grid":
            if axis not in shared:
                close = difflib.get_close_matches(axis, [k for k in shared if k not in ("axes", "exclude")], n=1)
                raise ParamsError(f"{params_path}: {origins[axis]}.{axis} says 'grid', but {grid_file} has no "
                                  f"{axis!r} list{f' (did you mean {close[0]!r}?)' if close else ''}")
            axes[axis] = [schema.typed_value(v, types[axis], f"{axis}[{i}]", grid_file)
                          for i, v in enumerate(shared[axis])]
            origins[axis] = f"{grid_file.name}:{axis}"
    return axes


def _added_axes(spec, shared, types, origins, params_path, grid_file):
    """An axis file may add axes to every benchmark (params/grid_pretraining.yaml: weights), with
    exclusions of its own; each added axis is collected as a column of the results."""
    added = shared.get("axes") or {}
    for axis, values in added.items():
        if axis not in types:
            raise ParamsError(f"{grid_file}: axes.{axis} is not a parameter of {spec['notebook']}")
        if axis in spec["axes"]:
            raise ParamsError(f"{grid_file} adds the axis {axis!r}, which {params_path} has already")
        spec["axes"][axis] = _typed_axes({axis: values}, types, f"{grid_file.name}: axes", grid_file)[axis]
        origins[axis] = f"{grid_file.name}: axes.{axis}"
        spec["collect"].setdefault(axis, f"params.{axis}")
    return added


def _read_yaml(path):
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ParamsError(f"{path}: not valid YAML{line}: {getattr(error, 'problem', None) or error}") from None


def _typed_axes(axes, types, label, path):
    """Each axis list's values coerced to the parameter's annotation ("grid" stays as it is)."""
    return {axis: values if values == "grid" else
            [schema.typed_value(v, types[axis], f"{label}.{axis}[{i}]", path) for i, v in enumerate(values)]
            for axis, values in axes.items()}


def _check_slurm_overrides(overrides):
    keys, patterns = schema.slurm_keys()
    for key in overrides or {}:
        if key not in keys and not any(key.startswith(p.lstrip("^")) for p in patterns):
            close = difflib.get_close_matches(key, keys, n=1)
            raise ParamsError(f"--slurm {key}=...: {key!r} is not a submitit resource"
                              f"{f' (did you mean {close[0]!r}?)' if close else ''}; known: {', '.join(keys)}")


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
        raise ParamsError(f"exclude in {params_path} must be a list of {{axis: value or [values]}}, "
                         f"e.g. [{{dataset: svhn, embedding_size: [256, 512]}}]")
    checked = []
    for rule in rules:
        unknown = set(rule) - set(axes)
        if unknown:
            raise ParamsError(f"exclude in {params_path} names {sorted(unknown)}, which is not a grid axis; "
                             f"axes: {sorted(axes)}")
        checked.append({axis: {_slug(v) for v in (values if isinstance(values, list) else [values])}
                        for axis, values in rule.items()})
    return checked


def _timeouts(timeouts, timeout_run):
    """{cell_s, run_s} (keys and values checked by the schema); timeout_run replaces run_s."""
    if timeout_run is not None and timeout_run <= 0:
        raise InputError(f"--timeout-run must be a positive number of seconds, got {timeout_run!r}")
    return {"cell_s": timeouts.get("cell_s"), "run_s": timeout_run if timeout_run is not None else timeouts.get("run_s")}


def parse_assignments(items, option="--slurm"):
    """['gpus_per_node=0', 'mem_gb=8'] -> {'gpus_per_node': 0, 'mem_gb': 8} (values read as YAML)."""
    parsed = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"{option} takes KEY=VALUE, got {item!r}")
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
        raise InputError(f"--only names {sorted(unknown)}, which is not a grid axis; axes: {sorted(axes)}")
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
        raise InputError(f"--only {only} matches no run of the grid{f' (its values: {choices})' if choices else ''}")
    check_values(spec, runs)
    return runs


def check_values(spec, runs):
    """Refuse, in one line naming the value and where it stands, a run whose loss network,
    extraction points or weights do not exist, or whose values its benchmark's
    check_parameters refuses: before any run starts, not inside each run's kernel."""
    from ..benchmarks import benchmark

    for run in runs:
        p = run.parameters
        for name, problem in _network_problems(p) + _benchmark_problems(benchmark(run.benchmark), p):
            where = spec.get("origins", {}).get(name, "the notebook's default")
            raise ParamsError(f"{spec['path']}: {where}{'.' + name if not where.endswith(name) else ''} = "
                              f"{p.get(name)!r}: {problem}")


def _network_problems(p):
    """[(parameter, problem)] of a run's arch, point(s) and weights against the registry."""
    from ..lossnets import REGISTRY, architecture, weight_names

    if "arch" not in p:
        return []
    try:
        entry = architecture(p["arch"])
    except InputError:
        close = " or ".join(map(repr, difflib.get_close_matches(str(p["arch"]), list(REGISTRY), n=2)))
        return [("arch", f"no such architecture{f' (did you mean {close}?)' if close else ''}; registered: "
                         f"{', '.join(REGISTRY)}; any timm model as 'timm:<name>'; your own: "
                         f"dplib.register_architecture in a module named in DPLIB_NETWORKS")]
    problems = []
    for name in ("point", "points"):
        if name in p:
            try:
                entry.check_points(p[name])
            except InputError as error:
                problems.append((name, str(error)))
    weights = p.get("weights")
    # a weight name (upper case, no path) that the architecture lacks; paths are the pre-flight's
    if isinstance(weights, str) and re.fullmatch(r"[A-Z0-9_]+", weights) and not str(p["arch"]).startswith("timm:"):
        named = weight_names(p["arch"])
        if weights not in named:
            problems.append(("weights", f"not a torchvision weight name of {p['arch']} "
                                        f"({', '.join(named) or 'it has none'}; or imagenet, null, a state-dict path)"))
    return problems


def _benchmark_problems(record, parameters):
    if record is None:
        return []
    return list(record.call("check_parameters", parameters))


_INSPECTED = {}  # (path, mtime) -> parameters: a grid reads its notebook's cell once


def notebook_parameters(notebook):
    """{name: papermill's parameter record} of a notebook's `parameters` cell."""
    import papermill

    path = Path(notebook)
    if not path.is_file():
        raise MissingData(f"notebook {notebook} not found (paths are relative to where you run dplib)")
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _INSPECTED:
        _INSPECTED[key] = papermill.inspect_notebook(str(notebook))
    return copy.deepcopy(_INSPECTED[key])


def notebook_defaults(notebook):
    """{name: default value} of a notebook's `parameters` cell: the one place defaults live."""
    import ast

    defaults = {}
    for name, record in notebook_parameters(notebook).items():
        try:
            defaults[name] = ast.literal_eval(record["default"])
        except (ValueError, SyntaxError):
            raise InputError(f"{notebook}: the default of {name!r} ({record['default']}) is not a literal; "
                             "parameters cells hold literal values only") from None
    return defaults


def parse_only(text):
    """'arch=vgg16|alexnet,point=late' -> {'arch': ['vgg16', 'alexnet'], 'point': ['late']}."""
    if not text:
        return None
    only = {}
    for part in text.split(","):
        if "=" not in part:
            raise InputError(f"--only takes key=value pairs separated by commas, got {part!r}")
        key, value = part.split("=", 1)
        only[key.strip()] = [v.strip() for v in value.split("|")]
    return only
