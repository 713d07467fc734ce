"""dplib.run.execute: every run ends, and ends recorded: time limits even for a wedged kernel,
a dead kernel, SIGTERM, and nothing of a run left running. Real kernels and processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from dplib.run import grid, plan
from dplib.run.folder import run_state

from conftest import dplib_cli

ROOT = Path(__file__).parents[1]


def folders(runs):
    return {json.loads((f / "params.json").read_text())["parameters"]["mode"]: f for f in (runs / "tiny").iterdir()}


def attempts(folder):
    path = folder / "attempts.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.mark.long
def test_limits_and_a_dead_kernel_fail_their_run_and_the_grid_goes_on(tmp_path, tiny_grid):
    # sleep: one cell over cell_s. wedged: deaf to signals, with a child process, three cells
    # each under cell_s but together over run_s. die: the kernel kills itself (as the OOM killer).
    params = tiny_grid({"mode": ["ok", "sleep", "wedged", "die"]}, timeouts={"cell_s": 25, "run_s": 50}, seconds=20.0)
    runs = tmp_path / "runs"
    started = time.time()
    result = dplib_cli("grid", "run", str(params), "--runs-dir", str(runs), "--workers", "2", cwd=tmp_path)
    assert result.returncode == 1 and "3 failed" in result.stdout, result.stdout + result.stderr
    assert time.time() - started < 240
    by_mode = folders(runs)
    assert run_state(by_mode["ok"]) == "completed"
    errors = {mode: json.loads((f / "status.json").read_text()).get("error") for mode, f in by_mode.items()}
    assert errors["sleep"]["name"] == "Timeout" and errors["sleep"]["limit"] == "cell_s"
    assert errors["sleep"]["limit_s"] == 25 and errors["sleep"]["cell"] == 3  # the injected-parameters cell is 1
    assert errors["wedged"]["name"] == "Timeout" and errors["wedged"]["limit"] == "run_s"
    assert errors["wedged"]["limit_s"] == 50 and errors["wedged"]["cell"] in (5, 6)
    assert errors["die"]["name"] == "DeadKernel" and errors["die"]["cell"] == 7
    # nothing of a failed run is left running: its kernel and the wedged kernel's child
    for mode in ("sleep", "wedged", "die"):
        assert not psutil.pid_exists(int((by_mode[mode] / "kernel.pid").read_text())), mode
    assert not psutil.pid_exists(int((by_mode["wedged"] / "child.pid").read_text()))
    assert not list(runs.rglob("claim.json"))  # every claim released

    # a plain rerun leaves failed runs alone; --retry-failed reruns them
    again = dplib_cli("grid", "run", str(params), "--runs-dir", str(runs), cwd=tmp_path)
    assert "0 to run" in again.stdout and attempts(by_mode["die"]) == 1
    retry = dplib_cli("grid", "run", str(params), "--runs-dir", str(runs), "--retry-failed", "--only", "mode=die",
                      cwd=tmp_path)
    assert "1 to run" in retry.stdout and attempts(by_mode["die"]) == 2 and attempts(by_mode["ok"]) == 1


def test_timeout_run_on_the_command_line_replaces_the_params_file(tmp_path, tiny_grid):
    params = tiny_grid({"mode": ["sleep"]}, timeouts={"cell_s": 300, "run_s": 300}, seconds=300.0)
    result = dplib_cli("grid", "run", str(params), "--runs-dir", str(tmp_path / "runs"), "--timeout-run", "20",
                       cwd=tmp_path)
    folder = folders(tmp_path / "runs")["sleep"]
    error = json.loads((folder / "status.json").read_text())["error"]
    assert result.returncode == 1 and error["name"] == "Timeout" and error["limit_s"] == 20
    assert json.loads((folder / "params.json").read_text())["timeouts"] == {"cell_s": 300, "run_s": 20}


@pytest.mark.long
def test_sigterm_records_the_run_interrupted_and_a_plain_rerun_runs_it(tmp_path, tiny_grid):
    params = tiny_grid({"mode": ["sleep"]}, seconds=300.0)
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "dplib", "grid", "run", str(params), "--runs-dir", str(runs)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and not list(runs.glob("tiny/*/kernel.pid")):
        time.sleep(0.2)
    folder = next(runs.glob("tiny/*"))
    kernel = int((folder / "kernel.pid").read_text())
    process.send_signal(signal.SIGTERM)  # the runner passes it to the run, which passes it to the kernel
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "interrupted" and status["error"]["name"] == "Interrupted", status
    assert run_state(folder) == "interrupted" and not psutil.pid_exists(kernel)
    rerun = dplib_cli("grid", "run", str(params), "--runs-dir", str(runs), "--timeout-run", "15", cwd=tmp_path)
    assert "1 to run" in rerun.stdout and attempts(folder) == 2


def test_a_run_killed_right_after_its_sigterm_is_already_recorded_interrupted_with_its_error(tmp_path, tiny_grid):
    # Slurm's cancel: SIGTERM, then SIGKILL KillWait seconds later (30 s in .ci/slurm.sh); on a busy
    # node the run may not reach its own end by then, so what it records at the signal is complete
    params = tiny_grid({"mode": ["sleep"]}, seconds=300.0)
    runs = tmp_path / "runs"
    runner = subprocess.Popen([sys.executable, "-m", "dplib", "grid", "run", str(params), "--runs-dir", str(runs)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kernel = None
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list(runs.glob("tiny/*/kernel.pid")):
            time.sleep(0.2)
        folder = next(runs.glob("tiny/*"))
        kernel = int((folder / "kernel.pid").read_text())
        run = next(p for p in psutil.Process(runner.pid).children() if "dplib.run.execute" in " ".join(p.cmdline()))
        run.send_signal(signal.SIGTERM)
        deadline = time.time() + 60
        while time.time() < deadline and json.loads((folder / "status.json").read_text())["state"] != "interrupted":
            time.sleep(0.01)
        run.kill()  # at once: the run's own end (finish) never comes
        status = json.loads((folder / "status.json").read_text())
        assert status["state"] == "interrupted" and status["error"]["name"] == "Interrupted", status
        assert status["error"]["cell"] == 3  # the sleeping cell (the injected-parameters cell is 1)
    finally:
        runner.kill()
        runner.communicate(timeout=60)
        if kernel is not None and psutil.pid_exists(kernel):
            psutil.Process(kernel).kill()


def test_a_run_held_by_a_live_process_is_not_executed_again(tmp_path, tiny_grid):
    from dplib.run import claims
    from dplib.run.execute import execute_run

    params = tiny_grid({"mode": ["ok"]})
    spec = plan.load_spec(params)
    [run] = plan.expand(spec, runs_dir=tmp_path / "runs")
    grid.prepare(run, spec)
    held = claims.take(run.directory)  # this test process holds it
    assert execute_run(run.directory) == "running" and attempts(run.directory) == 0
    held.release()
    assert execute_run(run.directory) == "completed" and attempts(run.directory) == 1
    assert os.path.exists(run.directory / "result.json") and not (run.directory / "claim.json").exists()


def running(pid):
    """The process runs (an exited one its new parent has not reaped yet does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.long
def test_a_kernel_outliving_its_killed_runner_holds_its_run_until_it_ends(tmp_path, tiny_grid):
    """`kill -9` of a runner's process group leaves the notebook kernel (a session of its own)
    running: here it is inside a C call that keeps the GIL, so ipykernel's parent poller cannot
    end it. The claim names the kernel, so a rerun leaves the run alone while it runs; the kernel
    ends once the call returns, and the next rerun executes the run once more, and only then."""
    from dplib.run import claims

    params = tiny_grid({"mode": ["hold"]}, seconds=45)  # outlives a rerun's start on a busy machine
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "dplib", "grid", "run", str(params), "--runs-dir", str(runs)]
    runner = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(runs.glob("tiny/*/holding")):
        time.sleep(0.2)
    [folder] = list((runs / "tiny").iterdir())
    kernel = int((folder / "kernel.pid").read_text())
    holders = claims.read(folder)["holders"]
    assert {(h["pid"], h["role"]) for h in holders} >= {(runner.pid, "runner"), (kernel, "kernel")}, holders

    os.killpg(runner.pid, signal.SIGKILL)  # the runner and the process executing the run; not the kernel
    runner.wait()
    assert running(kernel)
    held = dplib_cli("grid", "run", str(params), "--runs-dir", str(runs), cwd=tmp_path)
    assert held.returncode == 0 and "0 to run" in held.stdout, held.stdout + held.stderr
    assert running(kernel), "the kernel ended before the rerun looked: this test proved nothing"
    assert attempts(folder) == 1 and not (folder / "result.json").exists()

    deadline = time.time() + 120
    while time.time() < deadline and running(kernel):
        time.sleep(0.5)
    assert not running(kernel)  # no kernel survives its run
    rerun = dplib_cli("grid", "run", str(params), "--runs-dir", str(runs), cwd=tmp_path)
    assert rerun.returncode == 0 and "1 to run" in rerun.stdout, rerun.stdout + rerun.stderr
    assert attempts(folder) == 2 and json.loads((folder / "status.json").read_text())["state"] == "completed"
    assert not (folder / "claim.json").exists()  # released, the dead kernel's entry with it



def _colliding_ports(monkeypatch, collisions):
    """The port race of two kernels starting at once, made certain: jupyter_client picks a
    kernel's ports by binding port 0 and letting go (LocalPortCache.find_available_port); here the
    first port of the first `collisions` kernels is one this test is listening on, so ipykernel
    exits with 'Address already in use' before it answers, as it did under load (issue 25)."""
    import socket

    from jupyter_client.connect import LocalPortCache

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    original = LocalPortCache.find_available_port
    calls = []

    def find_available_port(self, ip):
        calls.append(ip)
        if len(calls) % 5 == 1 and len(calls) // 5 < collisions:  # the shell port: the first of five
            return taken.getsockname()[1]
        return original(self, ip)

    monkeypatch.setattr(LocalPortCache, "find_available_port", find_available_port)
    return taken, calls


def prepared_run(tmp_path, tiny_grid):
    params = tiny_grid({"mode": ["ok"]})
    spec = plan.load_spec(params)
    [run] = plan.expand(spec, runs_dir=tmp_path / "runs")
    grid.prepare(run, spec)
    return run.directory


def test_a_kernel_that_dies_starting_on_a_taken_port_is_started_again_and_recorded(tmp_path, tiny_grid, monkeypatch):
    from dplib.run.execute import execute_run

    folder = prepared_run(tmp_path, tiny_grid)
    taken, calls = _colliding_ports(monkeypatch, collisions=1)
    with taken:
        assert execute_run(folder) == "completed"
    assert len(calls) == 10, "two kernels were to be started: the collision did not happen"
    status = json.loads((folder / "status.json").read_text())
    [failure] = status["kernel_start_failures"]
    assert "Kernel died before replying to kernel_info" in failure["message"]
    assert attempts(folder) == 1 and (folder / "result.json").is_file()


def test_a_kernel_that_never_starts_fails_its_run_after_the_bounded_tries(tmp_path, tiny_grid, monkeypatch):
    from dplib.run.execute import KERNEL_STARTS, execute_run

    folder = prepared_run(tmp_path, tiny_grid)
    taken, calls = _colliding_ports(monkeypatch, collisions=KERNEL_STARTS)
    with taken:
        assert execute_run(folder) == "failed"
    status = json.loads((folder / "status.json").read_text())
    assert len(calls) == 5 * KERNEL_STARTS and len(status["kernel_start_failures"]) == KERNEL_STARTS - 1
    assert "Kernel died before replying to kernel_info" in status["error"]["message"]
    assert not (folder / "claim.json").exists()
