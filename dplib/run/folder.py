"""A run folder, runs/<name>/<run_id>/ (runs/smoke/... for --smoke), and the one place its
files are named:

    params.json     the notebook, benchmark, the run's parameters, its time limits, cwd
    claim.json      while a process holds the run (dplib.run.claims): nobody else executes it
    attempts.jsonl  one line per execution started (host, pid, time)
    log.txt         what the run's process printed (local executor)
    status.json     state, start/end, host, pid, git commit, versions, error (name, message, cell)
    notebook.ipynb  the executed notebook, saved by papermill after every cell
    metrics.jsonl   a training run's progress, a line per logging interval (dplib.metrics_log),
                    appended as it trains: what `dplib grid status` and `collect --curves` read
    checkpoint.pt   a training run's state at its last validation (dplib.train), for a resume
    curve.png       the training notebook's loss curve
    result.json     written by the notebook's last cell (dplib.benchmarks.record): the run is
                    complete when it exists

Every JSON file is written atomically. The state of a run is read from its folder alone
(`RunFolder.state`).
"""

import json
import os
import socket
import time
from pathlib import Path

from ..atomic import read_json, write_json_atomic
from ..benchmarks.record import RESULT
from ..metrics_log import METRICS, read as read_metrics
from . import claims

PARAMS, STATUS, ATTEMPTS, LOG, NOTEBOOK = "params.json", "status.json", "attempts.jsonl", "log.txt", "notebook.ipynb"
STATES = ("pending", "queued", "running", "interrupted", "failed", "completed")
ENDED = ("failed", "completed", "interrupted")


class RunFolder:
    """One run's folder: its files by name, read and written here only."""

    def __init__(self, directory):
        self.path = Path(directory)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    @property
    def notebook(self):
        return self.path / NOTEBOOK

    @property
    def log(self):
        return self.path / LOG

    def params(self):
        return read_json(self.path / PARAMS)

    def write_params(self, params):
        write_json_atomic(self.path / PARAMS, params)

    def status(self):
        return read_json(self.path / STATUS) or {}

    def write_status(self, status):
        write_json_atomic(self.path / STATUS, status)

    def result(self):
        return read_json(self.path / RESULT)

    def metrics(self):
        """The lines of its metrics.jsonl ([] before its first logging interval, or for no training)."""
        return read_metrics(self.path / METRICS)

    def attempts(self):
        path = self.path / ATTEMPTS
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []

    def append_attempt(self):
        attempt = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with open(self.path / ATTEMPTS, "a") as f:
            f.write(json.dumps(attempt) + "\n")

    def log_tail(self, characters=2000):
        return self.log.read_text(errors="replace")[-characters:] if self.log.is_file() else ""

    def mark_end(self, state, error):
        """Record an end the run's own process could not record (it died, or never started); an
        end the process recorded itself is kept."""
        status = self.status()
        if status.get("state") in ENDED or self.result():
            return
        status.update(state=state, error=error)
        self.write_status(status)

    def state(self, queue=None):
        """completed | failed | running | queued | interrupted | pending, from the folder alone.

        running / queued: a live claim holds the run (queued: nothing executes it yet, e.g. a
        Slurm job waiting in the queue). queue: see claims.is_stale."""
        if self.result() is not None:
            return "completed"
        status = self.status()
        if status.get("state") == "failed":
            return "failed"
        if not claims.is_stale(claims.read(self.path), queue=queue):
            return "running" if status.get("state") == "running" else "queued"
        if status.get("state") in ("running", "interrupted"):
            return "interrupted"
        return "pending"


def run_state(directory, queue=None):
    """The state of the run in `directory` (RunFolder.state)."""
    return RunFolder(directory).state(queue=queue)
