"""dplib.run.executors: local and Slurm are two implementations of one small interface; a third,
a test's own, runs a smoke grid through it, in process and from the command line."""

import json
import os
import sys
from pathlib import Path

import pytest

from dplib.run import claims, executors, grid
from dplib.run.execute import execute_run
from dplib.run.executors import Executor, register_executor
from dplib.run.folder import run_state

from conftest import dplib_cli

IN_PROCESS = '''
from dplib.run import claims
from dplib.run.execute import execute_run
from dplib.run.executors import Executor, register_executor
from dplib.run.folder import run_state


@register_executor
class InProcess(Executor):
    """Each run executed here, one after another, in this process (a scheduler of one's own)."""

    name = "in_process"
    seen = []

    def run(self, folders, spec, workers, progress, heartbeats):
        for folder in folders:
            claim = claims.take(folder, role="runner")
            if claim is None:  # another runner holds it
                progress.skipped()
                continue
            heartbeats.add(claim)
            progress.started()
            try:
                InProcess.seen.append(str(folder))
                execute_run(folder, token=claim.token)
            finally:
                heartbeats.discard(claim)
                claim.release()
                progress.finished(run_state(folder))
'''


@pytest.fixture
def in_process(tmp_path, monkeypatch):
    (tmp_path / "my_scheduler.py").write_text(IN_PROCESS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("my_scheduler")
    yield module.InProcess
    executors._REGISTERED.pop("in_process", None)
    sys.modules.pop("my_scheduler", None)


def test_the_built_in_executors_are_the_interfaces_two_implementations():
    assert executors.names()[:2] == ["local", "slurm"]
    assert isinstance(executors.executor("local"), Executor) and executors.executor("local").queued() is None
    assert executors.executor("slurm", cluster="local").queued() is None  # submitit's local path: no queue
    with pytest.raises(ValueError, match="unknown executor 'pbs'; choose one of local, slurm"):
        executors.executor("pbs")
    with pytest.raises(ValueError, match="not a dplib.run.executors.Executor subclass"):
        register_executor(object)


def test_a_test_executor_runs_the_b1_smoke_grid_through_the_interface(tmp_path, b1_params, in_process):
    path = b1_params(archs=("alexnet", "squeezenet1_1"))
    counts = grid.run_grid(path, smoke=True, executor="in_process", runs_dir=tmp_path / "runs")
    assert counts["completed"] == 2 and len(in_process.seen) == 2
    for folder in (tmp_path / "runs" / "b1").iterdir():
        assert json.loads((folder / "status.json").read_text())["state"] == "completed"
        assert claims.read(folder) is None  # every claim released
    again = grid.run_grid(path, smoke=True, executor="in_process", runs_dir=tmp_path / "runs")
    assert again["completed"] == 2 and len(in_process.seen) == 2  # done runs are not run again


def test_an_executor_named_in_dplib_executors_runs_from_the_command_line(tmp_path, tiny_grid):
    (tmp_path / "my_scheduler.py").write_text(IN_PROCESS)
    path = tiny_grid({"index": [0, 1]})
    env = {**os.environ, "DPLIB_EXECUTORS": "my_scheduler", "PYTHONPATH": str(tmp_path)}
    done = dplib_cli("grid", "run", str(path), "--executor", "in_process", "--runs-dir", str(tmp_path / "runs"),
                     cwd=tmp_path, env=env)
    assert done.returncode == 0 and "2 completed" in done.stdout and "(in_process, 1 worker" in done.stdout, \
        done.stdout + done.stderr
    refused = dplib_cli("grid", "run", str(path), "--executor", "in_proces", "--runs-dir", str(tmp_path / "runs"),
                        cwd=tmp_path, env=env)
    assert refused.returncode == 2 and "unknown executor 'in_proces'; choose one of local, slurm, in_process" \
        in refused.stderr


def test_a_claim_names_the_executor_whose_queue_keeps_it(tmp_path, in_process, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    claim = claims.take(folder, role="runner")
    claim.set_job("42", executor="in_process")
    monkeypatch.setattr(in_process, "queued", lambda self: {"42"})
    assert executors.queue_of(claims.read(folder)) == {"42"}
    assert claims.read(folder)["executor"] == "in_process"
