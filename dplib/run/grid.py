"""The grid runner: params/<name>.yaml -> one papermill run per grid cell, through an executor
(dplib.run.executors: local processes, a Slurm job array, or one's own).

Each run is a folder (dplib.run.folder) whose id is a readable prefix plus a hash of its
parameters (dplib.run.plan.run_id), so rerunning the grid skips completed runs and runs held by
another runner, leaves failed ones alone unless asked (--retry-failed), and reruns the rest,
including runs killed or interrupted mid-way. How one run is executed and bounded:
dplib.run.execute. `status_table` and `collect` read the folders back.
"""

import os
import signal
import socket
import sys
import threading
from pathlib import Path

from ..extras import require

require("the grid (dplib.run)", "yaml", "papermill", "nbformat", "pandas")

import pandas as pd  # noqa: E402

from ..atomic import atomic_write
from ..benchmarks import benchmark, check_rows
from ..benchmarks.record import SCORE_COLUMNS
from . import check, claims, executors
from .folder import STATES, RunFolder, run_state
from .plan import _slug, expand, load_spec, runs_root
from ..errors import UserError



# ----- runs --------------------------------------------------------------------------------

def prepare(run, spec):
    """Write params.json for a run: parameters, time limits, working directory (idempotent)."""
    RunFolder(run.directory).write_params(
        {"benchmark": run.benchmark, "notebook": run.notebook, "run_id": run.run_id, "parameters": run.parameters,
         "timeouts": spec["timeouts"], "cwd": os.getcwd()})


class _Progress:
    """tqdm bar over the runs to do, with done / failed / running / elsewhere counts and ETA."""

    def __init__(self, total, description):
        from ..progress import tqdm

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


class PreflightError(UserError, RuntimeError):
    """The pre-flight check found what a run would miss; nothing was started."""


def run_grid(params_path, smoke=False, only=None, workers=1, executor="local", retry_failed=False,
             runs_dir=None, cluster="slurm", timeout_run=None, slurm_overrides=None, grid_file=None, preflight=True):
    """Run every run of the grid that is neither done nor held by another runner; returns
    {state: count} over the grid. Failed runs are recorded and the grid goes on. First the
    pre-flight check (dplib.run.check; preflight=False skips it): a grid whose runs would miss
    data, weights, disk or device raises PreflightError before anything starts."""
    runner = executors.executor(executor, cluster=cluster)  # an unknown name stops here
    spec = load_spec(params_path, smoke=smoke, timeout_run=timeout_run, slurm_overrides=slurm_overrides,
                     grid_file=grid_file)
    runs = expand(spec, only=only, runs_dir=runs_dir)  # every value checked (dplib.run.plan.check_values)
    runner.check(spec)  # before anything is written (Slurm: the request against the cluster)
    if preflight:
        problems, notes = check.check(spec, runs, executor, runs_root(spec, runs_dir), grid_file, workers)
        if problems:
            raise PreflightError(check.report(problems, notes) + "\nnothing was started; fix the lines above "
                                 "(or --skip-check to run anyway)")
        print("\n".join(notes), flush=True)
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
            runner.run(todo, spec, workers, progress, heartbeats)
        finally:
            heartbeats.stop()
            progress.close()
    return summary(runs)


def queue_if_needed(runs):
    """The queue of the executor whose job a run's claim names (dplib.run.executors.queue_of),
    asked only when some claim names a job: on a machine whose Slurm controller is down squeue
    takes its own 10 s to give up, for every grid command."""
    claim = next((c for c in (claims.read(run.directory) for run in runs) if c and c.get("job_id")), None)
    return executors.queue_of(claim)


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
    """One row per run of the grid: id, axes, state, attempts, seconds, the latest step, training
    loss and validation score its metrics.jsonl holds (a run still going shows its progress), error."""
    spec = load_spec(params_path, smoke=smoke, grid_file=grid_file)
    runs = expand(spec, runs_dir=runs_dir)
    queue = queue_if_needed(runs)
    rows = []
    for run in runs:
        folder = RunFolder(run.directory)
        status = folder.status()
        error = status.get("error") or {}
        row = {"run_id": run.run_id}
        row.update({axis: _slug(run.parameters[axis]) for axis in spec["axes"]})
        lines = folder.metrics()
        validated = [line["validation"] for line in lines if line.get("validation") is not None]
        row.update(state=describe_state(run.directory, queue=queue),
                   attempts=len(folder.attempts()),
                   seconds=status.get("seconds"),
                   step=lines[-1]["step"] if lines else None,
                   loss=lines[-1]["loss"] if lines else None,
                   validation=validated[-1] if validated else None,
                   error=f"{error.get('name')}: {error.get('message')} (cell {error.get('cell')})" if error else "")
        rows.append(row)
    return pd.DataFrame(rows)


def collect(params_path, smoke=False, runs_dir=None, out=None, grid_file=None):
    """Gather every run folder of the grid into results/<benchmark>.csv (results/smoke/...
    for smoke): one row per run x score, failed and unfinished runs included with their state."""
    spec = load_spec(params_path, smoke=smoke, grid_file=grid_file)
    rows = []
    for run in expand(spec, runs_dir=runs_dir):
        folder = RunFolder(run.directory)
        state, result = folder.state(), folder.result()
        if result:
            extra = {column: _lookup(result, path) for column, path in spec["collect"].items()}
            for score in result["scores"]:
                rows.append({**score, **extra, "run_id": run.run_id, "state": state})
        else:
            error = folder.status().get("error") or {}
            rows.append(dict(benchmark=spec["benchmark"], score="", dataset="", scale="",
                             arch=run.parameters.get("arch", ""), point=_slug(run.parameters.get("point", "")),
                             value=float("nan"), note=error.get("message", ""), run_id=run.run_id, state=state))
    record = benchmark(spec["benchmark"])
    if record is not None:  # rows its record does not declare are named, and collected all the same
        for problem in check_rows(record, [r for r in rows if r["state"] == "completed"], require_all=False):
            print(f"dplib grid collect: {problem} (`dplib benchmark check {record.name}` checks the whole contract)",
                  file=sys.stderr)
    table = pd.DataFrame(rows, columns=SCORE_COLUMNS + list(spec["collect"]) + ["run_id", "state"])
    out = Path(out) if out else Path("results") / ("smoke" if smoke else "") / f"{spec['name']}.csv"
    with atomic_write(out) as f:
        table.to_csv(f, index=False)
    return out, table


CURVE_COLUMNS = ["step", "epoch", "loss", "lr", "samples_per_second", "validation"]


def collect_curves(params_path, smoke=False, runs_dir=None, out=None, grid_file=None):
    """Every run's metrics.jsonl as one tidy CSV (results/<name>_curves.csv): one row per logged
    interval, with the run's id, state and axis values; runs that logged nothing have no rows."""
    spec = load_spec(params_path, smoke=smoke, grid_file=grid_file)
    rows = []
    for run in expand(spec, runs_dir=runs_dir):
        folder = RunFolder(run.directory)
        axes = {axis: _slug(run.parameters[axis]) for axis in spec["axes"]}
        state = folder.state()
        rows += [{"run_id": run.run_id, "state": state, **axes, **line} for line in folder.metrics()]
    columns = ["run_id", "state", *spec["axes"]]
    table = pd.DataFrame(rows)
    table = table.reindex(columns=columns + CURVE_COLUMNS + sorted(set(table.columns) - set(columns)
                                                                   - set(CURVE_COLUMNS) - {"time"}))
    out = Path(out) if out else Path("results") / ("smoke" if smoke else "") / f"{spec['name']}_curves.csv"
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


def install_signal_handlers():
    """SIGTERM to `dplib grid run` (a kill, Slurm ending the job the runner runs in) is passed to
    the runs it started locally, which checkpoint and record themselves interrupted; then the
    runner exits. Runs submitted to Slurm keep running and keep their claims."""

    def stop(signum, frame):
        executors.LOCAL.terminate()
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)
