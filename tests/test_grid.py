"""dplib.run.grid: the runner, with real processes (papermill kernels, SIGKILL, submitit)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from dplib.run import executors, grid, plan
from dplib.run.folder import run_state
from dplib.analysis.scores import load_results

from conftest import dplib_cli

ROOT = Path(__file__).parents[1]


def test_unknown_grid_key_stops_before_anything_runs(tmp_path, b1_params):
    path = b1_params()
    spec = yaml.safe_load(path.read_text())
    spec["parameters"]["bach_size"] = 8
    path.write_text(yaml.safe_dump(spec))
    result = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown key 'bach_size' in parameters: not a parameter of" in result.stderr and "batch_size" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.long
def test_run_skip_collect_and_failures(tmp_path, b1_params):
    from dplib.benchmarks import benchmark, check_rows

    runs = tmp_path / "runs"
    path = b1_params(archs=("alexnet", "squeezenet1_1"))
    first = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(runs), "--workers", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folders = sorted((runs / "b1").iterdir())
    assert len(folders) == 2
    for folder in folders:
        assert {"params.json", "status.json", "notebook.ipynb", "result.json"} <= {p.name for p in folder.iterdir()}
        status = json.loads((folder / "status.json").read_text())
        assert status["state"] == "completed" and status["versions"]["torch"] and status["overhead_seconds"] >= 0
    stamps = {f: (f / "result.json").stat().st_mtime_ns for f in folders}
    second = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(runs), cwd=tmp_path)
    assert second.returncode == 0 and "0 to run" in second.stdout
    assert stamps == {f: (f / "result.json").stat().st_mtime_ns for f in folders}

    out = tmp_path / "results" / "b1.csv"
    collected = dplib_cli("grid", "collect", str(path), "--smoke", "--runs-dir", str(runs), "--out", str(out),
                          cwd=tmp_path)
    assert collected.returncode == 0, collected.stderr
    table = load_results(out)
    assert set(table.arch) == {"alexnet", "squeezenet1_1"} and set(table.point) == {"early", "semi_early", "mid", "late"}
    assert table.value.between(0, 1).all() and len(table) == 2 * 4 * (7 + 3)
    assert "dplib grid collect:" not in collected.stderr  # every row is one b1's record declares
    assert check_rows(benchmark("b1"), table.to_dict("records")) == []

    # a failing notebook: a data root that does not exist (past the pre-flight, which would stop it)
    failing = b1_params(archs=("alexnet", "vgg11"))
    spec = yaml.safe_load(failing.read_text())
    spec["smoke"]["parameters"]["data_root"] = str(tmp_path / "nowhere")
    failing.write_text(yaml.safe_dump(spec))
    result = dplib_cli("grid", "run", str(failing), "--smoke", "--runs-dir", str(tmp_path / "failing"), "--skip-check",
                       cwd=tmp_path)
    assert result.returncode == 1 and "2 failed" in result.stdout
    status = grid.status_table(failing, smoke=True, runs_dir=tmp_path / "failing")
    assert list(status.state) == ["failed", "failed"]
    record = json.loads(next((tmp_path / "failing" / "b1").glob("alexnet*/status.json")).read_text())
    assert record["error"]["name"] == "MissingData" and "dplib data download bapps" in record["error"]["message"]
    assert isinstance(record["error"]["cell"], int)
    _, table = grid.collect(failing, smoke=True, runs_dir=tmp_path / "failing", out=tmp_path / "failed.csv")
    assert list(table.state) == ["failed", "failed"] and table.value.isna().all()
    # failed runs are left alone on a plain rerun, and retried on request
    assert "0 to run" in dplib_cli("grid", "run", str(failing), "--smoke", "--runs-dir", str(tmp_path / "failing"),
                                   "--skip-check", cwd=tmp_path).stdout
    retry = dplib_cli("grid", "run", str(failing), "--smoke", "--runs-dir", str(tmp_path / "failing"),
                      "--retry-failed", "--skip-check", cwd=tmp_path)
    assert "2 to run" in retry.stdout and retry.returncode == 1


def test_sigkill_midway_then_rerun_completes_each_run_exactly_once(tmp_path, b1_params):
    runs = tmp_path / "runs"
    path = b1_params(archs=("alexnet", "squeezenet1_1", "vgg11", "resnet18"))
    command = [sys.executable, "-m", "dplib", "grid", "run", str(path), "--smoke", "--runs-dir", str(runs)]
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(runs.glob("b1/*/result.json"))) < 1:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the grid, its workers and their kernels
    process.wait()
    done_before = {p.parent: (p.read_text(), json.loads((p.parent / "status.json").read_text())["started"])
                   for p in runs.glob("b1/*/result.json")}
    assert 1 <= len(done_before) < 4
    states = grid.status_table(path, smoke=True, runs_dir=runs).state
    assert "completed" in set(states) and set(states) - {"completed"} <= {"interrupted", "pending"}

    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done_before)} already done" in rerun.stdout
    assert len(list(runs.glob("b1/*/result.json"))) == 4
    for folder, (text, started) in done_before.items():  # not lost, not rewritten, not rerun
        assert (folder / "result.json").read_text() == text
        assert json.loads((folder / "status.json").read_text())["started"] == started
    assert not list(runs.rglob("*.tmp"))


def test_slurm_path_through_submitits_local_executor_matches_local(tmp_path, b1_params):
    path = b1_params(archs=("alexnet",))
    local = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "local"), cwd=tmp_path)
    slurm = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "slurm"),
                      "--executor", "slurm", "--cluster", "local", cwd=tmp_path)
    assert local.returncode == 0 and slurm.returncode == 0, slurm.stderr
    tables = []
    for name in ("local", "slurm"):
        _, table = grid.collect(path, smoke=True, runs_dir=tmp_path / name, out=tmp_path / f"{name}.csv")
        tables.append(table.drop(columns=["note"]))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert list((tmp_path / "slurm" / "_submitit" / "b1").glob("*_result.pkl"))  # it went through submitit


def set_or_unset(monkeypatch, name, value):
    """The environment variable `name` set to `value`, or absent where `value` is None."""
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("parent, gpus, expected", [
    (None, 2, ["0", "1", "0"]),   # a GPU per worker, then shared in turn
    (None, 1, ["0", "0", "0"]),   # three workers sharing one GPU
    ("2,3", 2, ["2", "3", "2"]),  # the user's own CUDA_VISIBLE_DEVICES is what is divided
    (None, 0, [None, None, None]),
])
def test_each_local_worker_gets_its_own_gpu(monkeypatch, parent, gpus, expected):
    import torch

    set_or_unset(monkeypatch, "CUDA_VISIBLE_DEVICES", parent)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # conftest's 1 would cap the share below
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    environments = executors._worker_environments(3)  # moved from grid to the executors (issue 37)
    if gpus:
        assert [env["CUDA_VISIBLE_DEVICES"] for env in environments] == expected
    else:
        assert all(env.get("CUDA_VISIBLE_DEVICES") == parent for env in environments)
    assert {env["OMP_NUM_THREADS"] for env in environments} == {str(max(1, (os.cpu_count() or 1) // 3))}


@pytest.mark.parametrize("parent, cpus, expected", [(None, 8, "4"), ("1", 8, "1"), ("6", 8, "4"), ("", 4, "2")])
def test_each_local_worker_gets_a_share_of_the_threads_at_most_the_operators(monkeypatch, parent, cpus, expected):
    # 8 cores, 2 workers: 4 threads each, unless the operator's OMP_NUM_THREADS asks for fewer
    set_or_unset(monkeypatch, "OMP_NUM_THREADS", parent)
    monkeypatch.setattr(executors.os, "cpu_count", lambda: cpus)
    environments = executors._worker_environments(2)
    assert [(env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"]) for env in environments] == [(expected, expected)] * 2


def test_two_runners_started_together_execute_every_run_exactly_once(tmp_path, tiny_grid):
    params = tiny_grid({"index": list(range(6))}, seconds=1.0, mode="sleep")
    command = [sys.executable, "-m", "dplib", "grid", "run", str(params), "--runs-dir", str(tmp_path / "runs")]
    runners = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [r.communicate(timeout=600)[0] for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    folders = list((tmp_path / "runs" / "tiny").iterdir())
    assert len(folders) == 6 and all(run_state(f) == "completed" for f in folders)
    executions = [len((f / "attempts.jsonl").read_text().splitlines()) for f in folders]
    assert executions == [1] * 6, executions


def test_a_run_claimed_on_another_host_is_left_alone_until_its_heartbeat_is_stale(tmp_path, tiny_grid):
    from dplib.run import claims

    params = tiny_grid({"index": [0]})
    [run] = plan.expand(plan.load_spec(params), runs_dir=tmp_path / "runs")
    run.directory.mkdir(parents=True)
    (run.directory / "status.json").write_text(json.dumps({"state": "running", "host": "node-7", "pid": 1}))

    def claim_from_node_7(age):
        (run.directory / "claim.json").write_text(json.dumps({
            "token": "node-7", "heartbeat": time.time() - age, "job_id": None,
            "holders": [{"host": "node-7", "pid": 1, "started": 1.0, "role": "run"}]}))

    claim_from_node_7(age=5)
    result = dplib_cli("grid", "run", str(params), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0 and "0 to run" in result.stdout and "held by another runner" in result.stdout
    status = dplib_cli("grid", "status", str(params), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert "running (node-7)" in status.stdout and not (run.directory / "attempts.jsonl").exists()
    claim_from_node_7(age=claims.STALE_AFTER_S + 60)
    result = dplib_cli("grid", "run", str(params), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0 and "1 to run" in result.stdout
    assert run_state(run.directory) == "completed" and not (run.directory / "claim.json").exists()


@pytest.mark.long
@pytest.mark.timeout(3000)  # the limits below, not pytest's 600 s, bound it
def test_a_sigtermed_training_run_checkpoints_and_the_next_grid_run_resumes_it(tmp_path, smoke_params):
    import torch

    from dplib.data import superres

    root = superres.write_fixture(tmp_path / "superres")
    # 600 steps of 32 px crops (a step of the x4 network at 64 px costs 1-2 s on a busy 2-core
    # machine; at 32 px a quarter): enough steps that a metrics line (every 50) and `grid status`
    # come well before the end, however fast the machine. 600 steps are far more than the smoke
    # block's 6, so its 300 s cell limit (sized for 6 steps) is not this run's. The limits here
    # bound the run, they are not what this test is about.
    path = smoke_params("b2", root, {"arch": ["squeezenet1_1"], "point": ["early"], "scale": [4]},
                        iterations=600, val_every=1000, crop=32)
    spec = yaml.safe_load(path.read_text())
    spec["smoke"]["timeouts"] = {"cell_s": 1800, "run_s": 1800}
    path.write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "dplib", "grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "runs")]
    runner = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600

    def training_started():
        notebooks = list((tmp_path / "runs").glob("b2/*/notebook.ipynb"))
        if not notebooks:
            return False
        try:
            cells = json.loads(notebooks[0].read_text())["cells"]
        except ValueError:
            return False
        return any("fit(" in "".join(c["source"]) and c["metadata"].get("papermill", {}).get("start_time")
                   for c in cells)

    while time.time() < deadline and not training_started():
        time.sleep(0.5)
    # the run is watched while it trains: metrics.jsonl grows (a line every 50 steps), and
    # `dplib grid status` shows the latest step and loss (issue 36)
    from dplib.metrics_log import read

    def logged():
        return read(next((tmp_path / "runs").glob("b2/*"), tmp_path) / "metrics.jsonl")

    while time.time() < deadline and not logged():
        time.sleep(0.5)
    earlier = len(logged())
    status = dplib_cli("grid", "status", str(path), "--smoke", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    while time.time() < deadline and len(logged()) <= earlier:
        time.sleep(0.5)
    later = logged()
    assert 0 < earlier < len(later) and later[-1]["step"] < 600 and runner.poll() is None  # still going
    row = [line for line in status.stdout.splitlines() if "squeezenet1_1" in line][0]
    # the latest line when status read it: the one seen before it ran, or one written meanwhile
    assert "running" in row and any(f" {line['step']} " in f" {row} " for line in later[earlier - 1:]), status.stdout
    runner.send_signal(signal.SIGTERM)
    output = runner.communicate(timeout=600)[0]
    [folder] = list((tmp_path / "runs" / "b2").iterdir())
    status = json.loads((folder / "status.json").read_text())
    assert runner.returncode == 143 and status["state"] == "interrupted", (output, status)
    saved = torch.load(folder / "checkpoint.pt", weights_only=False)["state"]["step"]
    assert 0 < saved < 600

    rerun = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path,
                      timeout=1900)
    assert rerun.returncode == 0 and "1 to run" in rerun.stdout, rerun.stdout + rerun.stderr
    training = json.loads((folder / "result.json").read_text())["training"]
    assert training["resumed_from"] == saved and training["step"] == 600
    steps = [line["step"] for line in read(folder / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 600 and saved in steps  # each step once, the SIGTERM's too
    assert (folder / "curve.png").stat().st_size > 5_000  # the notebook drew its curve
    curves = dplib_cli("grid", "collect", str(path), "--smoke", "--curves", "--runs-dir", str(tmp_path / "runs"),
                       "--out", str(tmp_path / "curves.csv"), cwd=tmp_path)
    assert curves.returncode == 0, curves.stderr
    table = pd.read_csv(tmp_path / "curves.csv")
    assert list(table.step) == steps and set(table.arch) == {"squeezenet1_1"} and table.loss.notna().all()


# Benchmarks 2, 3 and 4 through the grid runner, collected, each row one their record declares:
# test_demo.py (make demo runs one selection of every grid through the runner).


def test_the_slurm_queue_is_asked_only_when_a_claim_names_a_slurm_job(tmp_path, tiny_grid, monkeypatch):
    """squeue takes 10 s to give up where the controller is down: grids on such a machine must
    not pay it for runs no Slurm job holds; a run a queued job holds stays held."""
    from dplib.run import slurm

    asked = []
    monkeypatch.setattr(slurm, "queued_jobs", lambda: asked.append(1) or {"42_0"})
    params = tiny_grid({"index": [0, 1]})
    runs = plan.expand(plan.load_spec(params), runs_dir=tmp_path / "runs")
    for run in runs:
        run.directory.mkdir(parents=True)
    assert grid.summary(runs)["pending"] == 2 and asked == []
    (runs[0].directory / "status.json").write_text(json.dumps({"state": "queued", "host": "login", "pid": 1}))
    (runs[0].directory / "claim.json").write_text(json.dumps({
        "token": "t", "heartbeat": time.time() - 3600, "job_id": "42_0",
        "holders": [{"host": "login", "pid": 1, "started": 1.0, "role": "runner"}]}))
    counts = grid.summary(runs)
    assert asked == [1] and counts["pending"] == 1 and counts["queued"] == 1
    assert run_state(runs[0].directory, queue=set()) == "pending"  # left the queue: nobody holds it


@pytest.mark.long
def test_a_pretraining_grid_runs_at_smoke_size_and_compares_the_pretrainings(tmp_path, b1_params):
    # params/grid_pretraining.yaml's mechanism: an axis file adds a `weights` axis to the
    # benchmark. Offline, two seeded random state dicts stand in for two pretrainings.
    import torchvision

    from dplib.analysis import tables

    stand_ins = []
    for seed in (1, 2):
        torch_path = tmp_path / f"squeezenet_pretraining_{seed}.pth"
        torch.manual_seed(seed)
        torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), torch_path)
        stand_ins.append(str(torch_path))
    axis_file = tmp_path / "grid_pretraining.yaml"
    axis_file.write_text(yaml.safe_dump({"arch": ["squeezenet1_1"], "point": ["early"],
                                         "axes": {"weights": stand_ins}}))
    path = b1_params(archs=("squeezenet1_1",))
    runs = tmp_path / "runs"
    done = dplib_cli("grid", "run", str(path), "--smoke", "--grid", str(axis_file), "--runs-dir", str(runs),
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "results" / "b1.csv"
    collected = dplib_cli("grid", "collect", str(path), "--smoke", "--grid", str(axis_file), "--runs-dir",
                          str(runs), "--out", str(out), cwd=tmp_path)
    assert collected.returncode == 0, collected.stderr
    scores = load_results(out)
    assert set(scores.weights) == set(stand_ins) and len(scores) == 2 * 4 * (7 + 3)
    side_by_side = tables.by_pretraining(scores)
    assert list(side_by_side.columns) == sorted(stand_ins) and len(side_by_side) == 4 * (7 + 3)
    # two different networks score differently, each its own run's value
    row = side_by_side.loc[("b1 2afc all", "squeezenet1_1", "late")]
    for weights in stand_ins:
        expected = scores[(scores.weights == weights) & (scores.point == "late") & (scores.score == "2afc")
                          & (scores.dataset == "all")].value
        assert row[weights] == pytest.approx(float(expected.iloc[0]))
    assert row[stand_ins[0]] != row[stand_ins[1]]
