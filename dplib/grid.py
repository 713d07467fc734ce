"""The grid runner: params/bN.yaml -> one papermill run per grid cell, locally or on Slurm.

A run is a folder runs/<benchmark>/<run_id>/ (runs/smoke/... for --smoke) holding
    params.json     the notebook, benchmark, the run's parameters, its time limits
    claim.json      while a process holds the run (dplib.claims): nobody else executes it
    attempts.jsonl  one line per execution started (host, pid, time)
    log.txt         what the run's process printed (local executor)
    status.json     state, start/end, host, pid, git commit, versions, error (name, message, cell)
    notebook.ipynb  the executed notebook, saved by papermill after every cell
    result.json     written by the notebook's last cell: the run is complete when it exists
All files are written atomically. A run id is a readable prefix plus a hash of the
parameters, so rerunning the grid skips completed runs and runs held by another runner,
leaves failed ones alone unless asked (--retry-failed), and reruns the rest, including runs
killed or interrupted mid-way. How one run is executed and bounded: dplib.execute.
"""

import concurrent.futures
import contextlib
import copy
import hashlib
import itertools
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from . import claims, slurm
from .atomic import atomic_write, read_json, write_json_atomic
from .execute import KERNEL_START_TIMEOUT, TERM_GRACE_S, current_cell, kill_processes, run_state  # noqa: F401
from .results import SCORE_COLUMNS

STATES = ("pending", "queued", "running", "interrupted", "failed", "completed")
BACKSTOP_GRACE_S = 300  # the local worker kills a run's process this long after its own watchdog should have


# ----- parameters ---------------------------------------------------------------------------

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
    grid_file = Path(grid_file) if grid_file else params_path.parent / "grid.yaml"
    if not grid_file.is_file() and any(v == "grid" for v in spec["axes"].values()):
        raise FileNotFoundError(f"no axis file at {grid_file}; --grid names another (params/grid_extended.yaml)")
    shared = yaml.safe_load(grid_file.read_text()) if grid_file.is_file() else {}
    spec = copy.deepcopy(spec)
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
    spec["exclude"] = _exclusions(spec.get("exclude") or [], spec["axes"], params_path)
    spec["smoke"] = smoke
    spec["path"] = str(params_path)
    return spec


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
    root = runs_root(spec, runs_dir)
    runs = []
    for values in itertools.product(*axes.values()):
        parameters = {**defaults, **spec["parameters"], **dict(zip(axes, values))}
        parameters.pop("out_dir", None)
        if any(_slug(parameters[k]) not in {_slug(v) for v in allowed} for k, allowed in only.items()):
            continue
        if any(all(_slug(parameters[axis]) in slugs for axis, slugs in rule.items())
               for rule in spec.get("exclude", [])):
            continue
        identifier = run_id(values, parameters)
        directory = (root / identifier).resolve()
        parameters["out_dir"] = str(directory)
        runs.append(Run(spec["benchmark"], spec["notebook"], identifier, parameters, directory))
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


# ----- runs --------------------------------------------------------------------------------

def prepare(run, spec):
    """Write params.json for a run: parameters, time limits, working directory (idempotent)."""
    write_json_atomic(run.directory / "params.json",
                      {"benchmark": run.benchmark, "notebook": run.notebook, "run_id": run.run_id,
                       "parameters": run.parameters, "timeouts": spec["timeouts"], "cwd": os.getcwd()})


def _record(directory, state, error):
    """Record an end the run's own process could not record (it died, or never started); an end
    the process recorded itself is kept."""
    status = read_json(Path(directory) / "status.json") or {}
    if status.get("state") in ("failed", "completed", "interrupted") or read_json(Path(directory) / "result.json"):
        return
    status.update(state=state, error=error)
    write_json_atomic(Path(directory) / "status.json", status)


def _log_tail(directory):
    path = Path(directory) / "log.txt"
    return path.read_text(errors="replace")[-2000:] if path.is_file() else ""


# ----- executors ----------------------------------------------------------------------------

def _worker_environments(workers):
    """One environment per worker slot: its own GPU when there are GPUs, else a share of the CPU threads."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    threads = max(1, (os.cpu_count() or 1) // workers)
    # the GPUs this process may use, by the names CUDA_VISIBLE_DEVICES gave them (a user who
    # set "2,3" means those two: worker 0 gets "2", not the machine's GPU 0)
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()][:gpus] \
        or [str(i) for i in range(gpus)]
    environments = []
    for slot in range(workers):
        env = dict(os.environ)
        if gpus:  # more workers than GPUs: workers share them in turn
            env["CUDA_VISIBLE_DEVICES"] = visible[slot % gpus]
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        environments.append(env)
    return environments


class _LocalProcesses:
    """The run processes a local runner has started, so that SIGTERM reaches them."""

    def __init__(self):
        self.processes, self.lock, self.stopping = set(), threading.Lock(), False

    @contextlib.contextmanager
    def tracked(self, process):
        with self.lock:
            self.processes.add(process)
        try:
            yield process
        finally:
            with self.lock:
                self.processes.discard(process)

    def terminate(self):
        """Pass SIGTERM to every run (each checkpoints and records itself interrupted)."""
        self.stopping = True
        with self.lock:
            for process in self.processes:
                with contextlib.suppress(ProcessLookupError, OSError):
                    process.send_signal(signal.SIGTERM)


_LOCAL = _LocalProcesses()


def _run_local(directories, workers, progress, spec, heartbeats):
    """Each run in its own process (`dplib grid execute`), `workers` at a time. A run is claimed
    just before it starts, so two runners on one runs folder share the work."""
    environments = _worker_environments(workers)
    free_slots = list(range(workers))
    lock = threading.Lock()
    run_s = spec["timeouts"]["run_s"]

    def one(directory):
        if _LOCAL.stopping:
            return
        claim = claims.take(directory, role="runner")
        if claim is None:  # another runner got there first
            progress.skipped()
            return
        heartbeats.add(claim)
        with lock:
            slot = free_slots.pop()
        progress.started()
        try:
            with open(Path(directory) / "log.txt", "w") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "dplib.cli", "grid", "execute", str(directory), "--claim-token", claim.token],
                    env=environments[slot], stdout=log, stderr=subprocess.STDOUT)
                try:
                    with _LOCAL.tracked(process):
                        process.wait(timeout=run_s + BACKSTOP_GRACE_S if run_s else None)
                except subprocess.TimeoutExpired:  # its own watchdog failed to end it: end it here
                    import psutil

                    with contextlib.suppress(psutil.Error):
                        tree = psutil.Process(process.pid).children(recursive=True) + [psutil.Process(process.pid)]
                        kill_processes(tree)
                    process.wait()
                    _record(directory, "failed", {"name": "Timeout", "limit": "run_s", "limit_s": run_s,
                                                  "cell": current_cell(Path(directory) / "notebook.ipynb"),
                                                  "message": f"the run exceeded its limit of {run_s} s and did not "
                                                             "stop itself; its processes were killed"})
            if process.returncode:
                _record(directory, "failed", {"name": "ProcessDied", "cell": None,
                                              "message": f"exit code {process.returncode}: {_log_tail(directory)}"})
        finally:
            heartbeats.discard(claim)
            claim.release()
            with lock:
                free_slots.append(slot)
            progress.finished(run_state(directory))

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(one, d) for d in directories]:
            future.result()


def _run_slurm(directories, spec, cluster, workers, progress, heartbeats):
    """All runs claimed now, then submitted as one job array; each task joins its run's claim,
    so a second runner neither resubmits queued runs nor takes running ones."""
    resources = dict(spec["slurm"])
    if cluster == "slurm":
        slurm.check_request(resources)
    queue = slurm.queued_jobs() if cluster == "slurm" else None
    runs = []
    for directory in directories:
        claim = claims.take(directory, role="runner", queue=queue)
        if claim is None:
            progress.skipped()
            continue
        heartbeats.add(claim)
        runs.append((directory, claim))
    if not runs:
        return

    def on_done(directory, claim, note):
        _record(directory, "interrupted", {"name": "Interrupted", "cell": None,
                                           "message": note or "the Slurm job ended without recording the run's end"})
        heartbeats.discard(claim)
        claim.release()
        progress.finished(run_state(directory))

    try:
        slurm.run_array(runs, spec, cluster, workers, progress, resources, on_done)
    except BaseException:
        for _, claim in runs:  # nothing was submitted, or the runner stops: queued jobs keep their claims
            if claim.heartbeat() and not (claims.read(claim.directory) or {}).get("job_id"):
                claim.release()
        raise


class _Progress:
    """tqdm bar over the runs to do, with done / failed / running / elsewhere counts and ETA."""

    def __init__(self, total, description):
        from .progress import tqdm

        self.bar = tqdm(total=total, desc=description, unit="run", dynamic_ncols=True)
        self.counts = {"done": 0, "failed": 0, "interrupted": 0, "running": 0, "elsewhere": 0}
        self.lock = threading.Lock()

    def _show(self):
        self.bar.set_postfix({k: v for k, v in self.counts.items() if v or k in ("done", "running")}, refresh=True)

    def started(self):
        with self.lock:
            self.counts["running"] += 1
            self._show()

    def skipped(self):
        with self.lock:
            self.counts["elsewhere"] += 1
            self.bar.update(1)
            self._show()

    def finished(self, state):
        with self.lock:
            self.counts["running"] -= 1
            self.counts[{"completed": "done", "interrupted": "interrupted"}.get(state, "failed")] += 1
            self.bar.update(1)
            self._show()

    def close(self):
        self.bar.close()


def run_grid(params_path, smoke=False, only=None, workers=1, executor="local", retry_failed=False,
             runs_dir=None, cluster="slurm", timeout_run=None, slurm_overrides=None, grid_file=None):
    """Run every run of the grid that is neither done nor held by another runner; returns
    {state: count} over the grid. Failed runs are recorded and the grid goes on."""
    if executor not in ("local", "slurm"):
        raise ValueError(f"unknown executor {executor!r}; choose local or slurm")
    spec = load_spec(params_path, smoke=smoke, timeout_run=timeout_run, slurm_overrides=slurm_overrides,
                     grid_file=grid_file)
    check_parameters(spec)
    if executor == "slurm" and cluster == "slurm":
        slurm.check_request(spec["slurm"])  # before anything is written
    runs = expand(spec, only=only, runs_dir=runs_dir)
    queue = queue_if_needed(runs)
    todo = []
    for run in runs:
        state = run_state(run.directory, queue=queue)
        if state in ("pending", "interrupted") or (state == "failed" and retry_failed):
            prepare(run, spec)
            todo.append(run.directory)
    label = f"{spec['name']}{' (smoke)' if smoke else ''}"
    print(f"{label}: {len(runs)} runs, {len(runs) - len(todo)} already done, failed or held by another runner, "
          f"{len(todo)} to run ({executor}, {workers} worker{'s' if workers > 1 else ''}; limits per run "
          f"{spec['timeouts']['run_s']} s, per cell {spec['timeouts']['cell_s']} s)", flush=True)
    if todo:
        progress = _Progress(len(todo), label)
        heartbeats = claims.Heartbeats()
        try:
            if executor == "local":
                _run_local(todo, workers, progress, spec, heartbeats)
            else:
                _run_slurm(todo, spec, cluster, workers, progress, heartbeats)
        finally:
            heartbeats.stop()
            progress.close()
    return summary(runs)


def queue_if_needed(runs):
    """The Slurm queue, asked only when some run's claim names a Slurm job: on a machine whose
    controller is down squeue takes its own 10 s to give up, for every grid command."""
    if any((claims.read(run.directory) or {}).get("job_id") for run in runs):
        return slurm.queued_jobs()
    return None


def summary(runs):
    queue = queue_if_needed(runs)
    counts = {state: 0 for state in STATES}
    for run in runs:
        counts[run_state(run.directory, queue=queue)] += 1
    return counts


def describe_state(directory, queue=None):
    """The state for people: 'running (node7)' when another host executes the run."""
    state = run_state(directory, queue=queue)
    if state in ("running", "queued"):
        claim = claims.read(directory) or {}
        hosts = [h for h in claims.holder_hosts(claim) if h != socket.gethostname()]
        job = f" job {claim['job_id']}" if claim.get("job_id") else ""
        if hosts or job:
            return f"{state} ({', '.join(hosts) or 'this host'}{job})"
    return state


def status_table(params_path, smoke=False, runs_dir=None, grid_file=None):
    """One row per run of the grid: id, axes, state, attempts, seconds, error."""
    spec = load_spec(params_path, smoke=smoke, grid_file=grid_file)
    runs = expand(spec, runs_dir=runs_dir)
    queue = queue_if_needed(runs)
    rows = []
    for run in runs:
        status = read_json(run.directory / "status.json") or {}
        error = status.get("error") or {}
        attempts = run.directory / "attempts.jsonl"
        row = {"run_id": run.run_id}
        row.update({axis: _slug(run.parameters[axis]) for axis in spec["axes"]})
        row.update(state=describe_state(run.directory, queue=queue),
                   attempts=len(attempts.read_text().splitlines()) if attempts.is_file() else 0,
                   seconds=status.get("seconds"),
                   error=f"{error.get('name')}: {error.get('message')} (cell {error.get('cell')})" if error else "")
        rows.append(row)
    return pd.DataFrame(rows)


def collect(params_path, smoke=False, runs_dir=None, out=None, grid_file=None):
    """Gather every run folder of the grid into results/<benchmark>.csv (results/smoke/...
    for smoke): one row per run x score, failed and unfinished runs included with their state."""
    spec = load_spec(params_path, smoke=smoke, grid_file=grid_file)
    rows = []
    for run in expand(spec, runs_dir=runs_dir):
        state = run_state(run.directory)
        result = read_json(run.directory / "result.json")
        if result:
            extra = {column: _lookup(result, path) for column, path in spec["collect"].items()}
            for score in result["scores"]:
                rows.append({**score, **extra, "run_id": run.run_id, "state": state})
        else:
            error = (read_json(run.directory / "status.json") or {}).get("error") or {}
            rows.append(dict(benchmark=spec["benchmark"], score="", dataset="", scale="",
                             arch=run.parameters.get("arch", ""), point=_slug(run.parameters.get("point", "")),
                             value=float("nan"), note=error.get("message", ""), run_id=run.run_id, state=state))
    table = pd.DataFrame(rows, columns=SCORE_COLUMNS + list(spec["collect"]) + ["run_id", "state"])
    out = Path(out) if out else Path("results") / ("smoke" if smoke else "") / f"{spec['name']}.csv"
    with atomic_write(out) as f:
        table.to_csv(f, index=False)
    return out, table


def _lookup(record, dotted):
    """record["a"]["b"] for "a.b"; None where the path is absent."""
    for key in dotted.split("."):
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


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


def install_signal_handlers():
    """SIGTERM to `dplib grid run` (a kill, Slurm ending the job the runner runs in) is passed to
    the runs it started locally, which checkpoint and record themselves interrupted; then the
    runner exits. Runs submitted to Slurm keep running and keep their claims."""

    def stop(signum, frame):
        _LOCAL.terminate()
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)
