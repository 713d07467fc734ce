"""dplib.run.slurm and the grid on a real Slurm: the request checked against the cluster, the
queue asked, cancelled running and pending tasks recorded `interrupted`, no run submitted twice.

Tests marked `slurm` need a Slurm controller answering here (`.ci/slurm.sh start`, which
`.ci/run` does); elsewhere they are skipped with that reason."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dplib.run import grid, plan, slurm
from dplib.run.folder import run_state

from conftest import dplib_cli

NODES = [dict(name="cpu1", partition="debug", default=True, cpus=2, mem_mb=22000, gpus=0, time_limit_min=float("inf")),
         dict(name="gpu1", partition="gpu", default=False, cpus=16, mem_mb=128000, gpus=4, time_limit_min=2880)]
# CI sets DPLIB_REQUIRE_SLURM: there a missing Slurm fails these tests instead of skipping them
needs_slurm = pytest.mark.skipif(not slurm.available() and not os.environ.get("DPLIB_REQUIRE_SLURM"),
                                 reason="no Slurm controller answers here (sinfo); .ci/slurm.sh start runs one")


def test_time_limits_and_gpu_counts_as_sinfo_prints_them():
    assert slurm.parse_time_limit("infinite") == float("inf")
    assert slurm.parse_time_limit("2-00:30:00") == 2 * 1440 + 30
    assert slurm.parse_time_limit("01:30:00") == 90 and slurm.parse_time_limit("45:30") == 45.5
    assert slurm.parse_time_limit("30") == 30
    assert slurm._gpus("gpu:a100:4(S:0-1)") == 4 and slurm._gpus("gpu:2,gpu:v100:1") == 3
    assert slurm._gpus("(null)") == 0


def test_a_request_no_node_can_satisfy_stops_with_the_reason():
    assert [n["name"] for n in slurm.check_request({"cpus_per_task": 2, "mem_gb": 8}, NODES)] == ["cpu1"]
    assert slurm.check_request({"slurm_partition": "gpu", "gpus_per_node": 1, "mem_gb": 32}, NODES)
    with pytest.raises(ValueError, match=r"gpus_per_node=1 \(at most 0\).*--slurm"):
        slurm.check_request({"gpus_per_node": 1}, NODES)  # the default partition has no GPU
    with pytest.raises(ValueError, match=r"cpus_per_task=32 \(at most 16\)"):
        slurm.check_request({"slurm_partition": "gpu", "cpus_per_task": 32}, NODES)
    with pytest.raises(ValueError, match=r"timeout_min=3000 \(at most 2880\)"):
        slurm.check_request({"slurm_partition": "gpu", "timeout_min": 3000}, NODES)
    with pytest.raises(ValueError, match="partition 'big' does not exist; partitions: debug, gpu"):
        slurm.check_request({"slurm_partition": "big"}, NODES)


def test_slurm_overrides_and_the_time_limit_from_the_params_file(tmp_path):
    spec = plan.load_spec(Path(__file__).parents[1] / "params" / "b1.yaml",
                          slurm_overrides=plan.parse_assignments(["gpus_per_node=0", "slurm_partition=debug"]))
    assert spec["slurm"]["gpus_per_node"] == 0 and spec["slurm"]["slurm_partition"] == "debug"
    assert spec["slurm"]["timeout_min"] * 60 >= spec["timeouts"]["run_s"]  # Slurm never ends a run before its limit
    with pytest.raises(ValueError, match="--slurm takes KEY=VALUE"):
        plan.parse_assignments(["gpus_per_node"])


# ----- a real Slurm ------------------------------------------------------------------------

def wait_for(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@needs_slurm
@pytest.mark.slurm
def test_an_impossible_request_stops_before_anything_is_submitted(tmp_path, tiny_grid):
    params = tiny_grid({"index": [0]})
    for override, reason in (("gpus_per_node=1", "gpus_per_node=1 (at most 0)"),
                             ("cpus_per_task=999", "cpus_per_task=999")):
        result = dplib_cli("grid", "run", str(params), "--executor", "slurm", "--slurm", override,
                           "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
        assert result.returncode == 2 and reason in result.stderr and "--slurm" in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


@needs_slurm
@pytest.mark.slurm
def test_the_grid_as_a_real_job_array_gives_the_local_executors_results(tmp_path, b1_params):
    path = b1_params(archs=("alexnet", "squeezenet1_1"))
    tables = []
    for executor in ("local", "slurm"):
        result = dplib_cli("grid", "run", str(path), "--smoke", "--executor", executor, "--workers", "2",
                           "--slurm", "gpus_per_node=0", "--slurm", "cpus_per_task=1", "--slurm", "mem_gb=4",
                           "--runs-dir", str(tmp_path / executor), cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        _, table = grid.collect(path, smoke=True, runs_dir=tmp_path / executor, out=tmp_path / f"{executor}.csv")
        tables.append(table.drop(columns=["note"]))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    host_of = {json.loads(p.read_text())["host"] for p in (tmp_path / "slurm").glob("b1/*/status.json")}
    assert host_of and list((tmp_path / "slurm" / "_submitit" / "b1").glob("*_submission.sh"))  # sbatch was used


@needs_slurm
@pytest.mark.slurm
def test_cancelled_tasks_are_interrupted_and_a_second_runner_submits_nothing(tmp_path, tiny_grid):
    params = tiny_grid({"index": [0, 1, 2]}, timeouts={"cell_s": 1800, "run_s": 1800}, mode="sleep", seconds=600.0)
    runs = tmp_path / "runs"
    common = ["--executor", "slurm", "--workers", "1", "--slurm", "gpus_per_node=0", "--slurm", "cpus_per_task=1",
              "--slurm", "mem_gb=2", "--runs-dir", str(runs)]
    first = subprocess.Popen([sys.executable, "-m", "dplib", "grid", "run", str(params), *common], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    folders = {}

    def one_running():
        for f in runs.glob("tiny/*"):
            folders[json.loads((f / "params.json").read_text())["parameters"]["index"]] = f
        return len(folders) == 3 and any(run_state(f) == "running" for f in folders.values()) and all(
            (json.loads((f / "claim.json").read_text()) if (f / "claim.json").exists() else {}).get("job_id")
            for f in folders.values())

    try:
        wait_for(one_running, 180, "the first task to run")
        job = json.loads((folders[0] / "claim.json").read_text())["job_id"].split("_")[0]
        # a second runner on the same folder: runs queued or running under the first are not submitted again
        second = dplib_cli("grid", "run", str(params), *common, cwd=tmp_path)
        assert second.returncode == 0 and "0 to run" in second.stdout, second.stdout + second.stderr
        status = dplib_cli("grid", "status", str(params), "--runs-dir", str(runs), cwd=tmp_path).stdout
        assert "running (" in status and "queued (" in status and f"job {job}_" in status, status
        assert "interrupted" not in status

        subprocess.run(["scancel", f"{job}_2"], check=True, timeout=30)          # still waiting in the array
        wait_for(lambda: run_state(folders[2]) == "interrupted", 120, "the pending task's run to be interrupted")
        running = next(i for i, f in folders.items() if run_state(f) == "running")
        subprocess.run(["scancel", f"{job}_{running}"], check=True, timeout=30)   # running: SIGTERM to its processes
        wait_for(lambda: run_state(folders[running]) == "interrupted", 120, "the running task's end")
        subprocess.run(["scancel", job], check=True, timeout=30)                  # whatever is left
        output = first.communicate(timeout=180)[0]
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1, output
    for f in folders.values():
        record = json.loads((f / "status.json").read_text())
        assert record["state"] == "interrupted" and record["error"]["name"] == "Interrupted", record
    attempts = {i: len((f / "attempts.jsonl").read_text().splitlines()) if (f / "attempts.jsonl").exists() else 0
                for i, f in folders.items()}
    assert attempts[2] == 0 and attempts[running] == 1 and max(attempts.values()) == 1
    assert "left the queue" in json.loads((folders[2] / "status.json").read_text())["error"]["message"]
    # a plain `grid run` reruns interrupted runs (here each hits a short limit: it ran)
    rerun = dplib_cli("grid", "run", str(params), "--executor", "local", "--only", "index=2", "--timeout-run", "15",
                      "--runs-dir", str(runs), cwd=tmp_path)
    assert "1 to run" in rerun.stdout and (folders[2] / "attempts.jsonl").read_text().count("\n") == 1
