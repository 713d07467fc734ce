"""The grid runner: params/bN.yaml -> one papermill run per grid cell, locally or on Slurm.

A run is a folder runs/<benchmark>/<run_id>/ (runs/smoke/... for --smoke) holding
    params.json     the notebook, benchmark and the run's parameters
    log.txt         what the run's process printed (local executor)
    status.json     state, start/end, host, pid, git commit, versions, error (name, message, cell)
    notebook.ipynb  the executed notebook, saved by papermill after every cell
    result.json     written by the notebook's last cell: the run is complete when it exists
All files are written atomically. A run id is a readable prefix plus a hash of the
parameters, so rerunning the grid skips completed runs, leaves failed ones alone unless
asked (--retry-failed), and reruns the rest, including runs killed mid-way.
"""

import concurrent.futures
import copy
import hashlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .results import SCORE_COLUMNS, environment, read_json, write_json_atomic

KERNEL_START_TIMEOUT = 300  # seconds; papermill's 60 s default is too short on a loaded 2-core machine
STATES = ("pending", "running", "interrupted", "failed", "completed")


# ----- parameters ---------------------------------------------------------------------------

def load_spec(params_path, smoke=False):
    """Read params/bN.yaml; with smoke, apply its `smoke` block (which only shrinks sizes).

    Keys: benchmark, notebook, parameters (the paper's settings), axes (grid axes; the
    value "grid" takes the list from grid.yaml beside it), smoke {parameters, axes}, slurm.
    """
    params_path = Path(params_path)
    if not params_path.is_file():
        raise FileNotFoundError(f"no params file at {params_path}; the benchmarks' files are params/b1.yaml ... b4.yaml")
    spec = yaml.safe_load(params_path.read_text())
    for key in ("benchmark", "notebook", "parameters", "axes"):
        if key not in spec:
            raise ValueError(f"{params_path} lacks the key {key!r}")
    grid_file = params_path.parent / "grid.yaml"
    shared = yaml.safe_load(grid_file.read_text()) if grid_file.is_file() else {}
    spec = copy.deepcopy(spec)
    if smoke:
        block = spec.get("smoke") or {}
        spec["parameters"].update(block.get("parameters", {}))
        spec["axes"].update(block.get("axes", {}))
    for axis, values in spec["axes"].items():
        if values == "grid":
            if axis not in shared:
                raise ValueError(f"axis {axis!r} says 'grid' but {grid_file} has no {axis!r} list")
            spec["axes"][axis] = list(shared[axis])
        elif not isinstance(values, list) or not values:
            raise ValueError(f"axis {axis!r} in {params_path} must be a non-empty list or 'grid'")
    spec["smoke"] = smoke
    spec["path"] = str(params_path)
    return spec


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
    return base / spec["benchmark"]


def expand(spec, only=None, runs_dir=None):
    """Every run of the grid (the cartesian product of the axes), filtered by `only`
    ({axis: [allowed values as strings]})."""
    axes = spec["axes"]
    only = only or {}
    unknown = set(only) - set(axes) - set(spec["parameters"])
    if unknown:
        raise ValueError(f"--only names {sorted(unknown)}, which is not a grid axis; axes: {sorted(axes)}")
    root = runs_root(spec, runs_dir)
    runs = []
    for values in itertools.product(*axes.values()):
        parameters = dict(spec["parameters"], **dict(zip(axes, values)))
        if any(_slug(parameters[k]) not in {_slug(v) for v in allowed} for k, allowed in only.items()):
            continue
        identifier = run_id(values, parameters)
        directory = (root / identifier).resolve()
        parameters["out_dir"] = str(directory)
        runs.append(Run(spec["benchmark"], spec["notebook"], identifier, parameters, directory))
    return runs


def notebook_parameters(notebook):
    """The names and defaults of a notebook's `parameters` cell (as papermill sees them)."""
    import papermill

    if not Path(notebook).is_file():
        raise FileNotFoundError(f"notebook {notebook} not found (paths are relative to where you run dplib)")
    return papermill.inspect_notebook(str(notebook))


def check_parameters(spec):
    """Stop before anything runs if a grid key is not a parameter of the notebook."""
    known = notebook_parameters(spec["notebook"])
    keys = set(spec["parameters"]) | set(spec["axes"]) | {"out_dir"}
    unknown = sorted(keys - set(known))
    if unknown:
        raise ValueError(f"{spec['path']}: {', '.join(map(repr, unknown))} is not a parameter of {spec['notebook']}; "
                         f"its parameters are: {', '.join(sorted(known))}")


# ----- one run ------------------------------------------------------------------------------

def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, TypeError):
        return False
    except PermissionError:
        return True


def run_state(directory):
    """completed | failed | running | interrupted | pending, from the run folder alone."""
    directory = Path(directory)
    if read_json(directory / "result.json") is not None:
        return "completed"
    status = read_json(directory / "status.json")
    if status is None:
        return "pending"
    if status.get("state") == "failed":
        return "failed"
    if status.get("state") == "running":
        alive = status.get("host") == socket.gethostname() and _pid_alive(status.get("pid"))
        return "running" if alive else "interrupted"
    return "pending"


def prepare(run):
    """Write params.json for a run (idempotent)."""
    write_json_atomic(run.directory / "params.json",
                      {"benchmark": run.benchmark, "notebook": run.notebook, "run_id": run.run_id,
                       "parameters": run.parameters})


def execute_run(directory):
    """Execute one prepared run folder with papermill; returns its final state.

    Runs in its own process (a local worker's subprocess or a Slurm job).
    """
    import papermill

    directory = Path(directory)
    if run_state(directory) == "completed":
        return "completed"
    spec = read_json(directory / "params.json")
    started = time.time()
    status = {"state": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(),
              "run_id": spec["run_id"], **environment()}
    write_json_atomic(directory / "status.json", status)
    output = directory / "notebook.ipynb"
    try:
        papermill.execute_notebook(spec["notebook"], str(output), parameters=spec["parameters"],
                                   progress_bar=False, kernel_name="python3", cwd=os.getcwd(),
                                   start_timeout=KERNEL_START_TIMEOUT)
        if read_json(directory / "result.json") is None:
            raise RuntimeError("the notebook finished without writing result.json (its last cell must call "
                               "dplib.results.write_result)")
        status.update(state="completed")
    except Exception as error:  # a failing notebook is recorded, and the grid goes on
        status.update(state="failed", error=_describe(error))
    ended = time.time()
    status.update(ended=time.strftime("%Y-%m-%dT%H:%M:%S"), seconds=round(ended - started, 3),
                  overhead_seconds=_overhead(output, ended - started))
    write_json_atomic(directory / "status.json", status)
    return status["state"]


def _record_crash(directory, reason):
    """The run's process died before it could record anything itself: say so, with its log."""
    log_path = Path(directory) / "log.txt"
    log = log_path.read_text(errors="replace")[-2000:] if log_path.is_file() else ""
    status = read_json(Path(directory) / "status.json") or {}
    status.update(state="failed", error={"name": "ProcessDied", "message": f"{reason}: {log}", "cell": None})
    write_json_atomic(Path(directory) / "status.json", status)


def _describe(error):
    name = getattr(error, "ename", type(error).__name__)
    message = getattr(error, "evalue", str(error))
    cell = getattr(error, "cell_index", None)
    return {"name": name, "message": str(message)[:2000], "cell": cell,
            "traceback": traceback.format_exception_only(type(error), error)[-1][:2000]}


def _overhead(notebook_path, total_seconds):
    """Seconds of a run not spent executing cells: kernel start, papermill, saving."""
    try:
        cells = json.loads(Path(notebook_path).read_text())["cells"]
        executing = sum(c.get("metadata", {}).get("papermill", {}).get("duration") or 0 for c in cells)
        return round(total_seconds - executing, 3)
    except (OSError, ValueError, KeyError):
        return None


# ----- executors ----------------------------------------------------------------------------

def _worker_environments(workers):
    """One environment per worker slot: its own GPU when there are GPUs, else a share of the CPU threads."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    threads = max(1, (os.cpu_count() or 1) // workers)
    environments = []
    for slot in range(workers):
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        environments.append(env)
    return environments


def _run_local(directories, workers, progress):
    environments = _worker_environments(workers)
    free_slots = list(range(workers))
    lock = threading.Lock()

    def one(directory):
        with lock:
            slot = free_slots.pop()
        progress.started()
        try:
            with open(Path(directory) / "log.txt", "w") as log:
                process = subprocess.run([sys.executable, "-m", "dplib.cli", "grid", "execute", str(directory)],
                                         env=environments[slot], stdout=log, stderr=subprocess.STDOUT)
            if process.returncode and run_state(directory) not in ("failed", "completed"):
                _record_crash(directory, f"exit code {process.returncode}")
        finally:
            with lock:
                free_slots.append(slot)
            progress.finished(run_state(directory))

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(one, d) for d in directories]:
            future.result()


def _run_submitit(directories, spec, cluster, workers, progress, runs_dir=None):
    import submitit

    folder = runs_root(spec, runs_dir).parent / "_submitit" / spec["benchmark"]
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    resources = dict(spec.get("slurm") or {})
    resources.setdefault("slurm_array_parallelism", workers)
    executor.update_parameters(**resources)
    jobs = executor.map_array(execute_run, [str(d) for d in directories])
    pending = dict(zip(jobs, directories))
    for _ in jobs:
        progress.started()
    while pending:
        for job in [j for j in pending if j.done()]:
            directory = pending.pop(job)
            try:
                state = job.result()
            except Exception as error:  # the job itself died (time limit, node failure)
                if run_state(directory) not in ("completed", "failed"):
                    _record_crash(directory, f"submitit job {job.job_id}: {error}")
                state = run_state(directory)
            progress.finished(state)
        time.sleep(0.5)


class _Progress:
    """tqdm bar over the runs to do, with done / failed / running counts and ETA."""

    def __init__(self, total, description):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=description, unit="run", dynamic_ncols=True)
        self.counts = {"done": 0, "failed": 0, "running": 0}
        self.lock = threading.Lock()

    def _show(self):
        self.bar.set_postfix(self.counts, refresh=True)

    def started(self):
        with self.lock:
            self.counts["running"] += 1
            self._show()

    def finished(self, state):
        with self.lock:
            self.counts["running"] -= 1
            self.counts["done" if state == "completed" else "failed"] += 1
            self.bar.update(1)
            self._show()

    def close(self):
        self.bar.close()


def run_grid(params_path, smoke=False, only=None, workers=1, executor="local", retry_failed=False,
             runs_dir=None, cluster="slurm"):
    """Run every run of the grid that is not done; returns {state: count} over the grid.

    Failed runs are recorded and the grid goes on; the caller exits non-zero if any failed.
    """
    spec = load_spec(params_path, smoke=smoke)
    check_parameters(spec)
    runs = expand(spec, only=only, runs_dir=runs_dir)
    todo = []
    for run in runs:
        state = run_state(run.directory)
        if state in ("pending", "interrupted") or (state == "failed" and retry_failed):
            prepare(run)
            todo.append(run.directory)
    label = f"{spec['benchmark']}{' (smoke)' if smoke else ''}"
    print(f"{label}: {len(runs)} runs, {len(runs) - len(todo)} already done or failed, {len(todo)} to run "
          f"({executor}, {workers} worker{'s' if workers > 1 else ''})", flush=True)
    if todo:
        progress = _Progress(len(todo), label)
        try:
            if executor == "local":
                _run_local(todo, workers, progress)
            elif executor == "slurm":
                _run_submitit(todo, spec, cluster, workers, progress, runs_dir)
            else:
                raise ValueError(f"unknown executor {executor!r}; choose local or slurm")
        finally:
            progress.close()
    return summary(runs)


def summary(runs):
    counts = {state: 0 for state in STATES}
    for run in runs:
        counts[run_state(run.directory)] += 1
    return counts


def status_table(params_path, smoke=False, runs_dir=None):
    """One row per run of the grid: id, axes, state, seconds, error."""
    spec = load_spec(params_path, smoke=smoke)
    rows = []
    for run in expand(spec, runs_dir=runs_dir):
        status = read_json(run.directory / "status.json") or {}
        error = status.get("error") or {}
        row = {"run_id": run.run_id}
        row.update({axis: _slug(run.parameters[axis]) for axis in spec["axes"]})
        row.update(state=run_state(run.directory), seconds=status.get("seconds"),
                   error=f"{error.get('name')}: {error.get('message')} (cell {error.get('cell')})" if error else "")
        rows.append(row)
    return pd.DataFrame(rows)


def collect(params_path, smoke=False, runs_dir=None, out=None):
    """Gather every run folder of the grid into results/<benchmark>.csv (results/smoke/...
    for smoke): one row per run x score, failed and unfinished runs included with their state."""
    spec = load_spec(params_path, smoke=smoke)
    rows = []
    for run in expand(spec, runs_dir=runs_dir):
        state = run_state(run.directory)
        result = read_json(run.directory / "result.json")
        if result:
            for score in result["scores"]:
                rows.append({**score, "run_id": run.run_id, "state": state})
        else:
            error = (read_json(run.directory / "status.json") or {}).get("error") or {}
            rows.append(dict(benchmark=spec["benchmark"], score="", dataset="", scale="",
                             arch=run.parameters.get("arch", ""), point=_slug(run.parameters.get("point", "")),
                             value=float("nan"), note=error.get("message", ""), run_id=run.run_id, state=state))
    table = pd.DataFrame(rows, columns=SCORE_COLUMNS + ["run_id", "state"])
    out = Path(out) if out else Path("results") / ("smoke" if smoke else "") / f"{spec['benchmark']}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(".csv.tmp")
    table.to_csv(temporary, index=False)
    os.replace(temporary, out)
    return out, table


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
    """SIGTERM (Slurm's cancel, a kill) ends the grid like Ctrl-C: run folders keep their state."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
