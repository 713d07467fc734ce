"""dplib.run.claims: one holder per run, across threads, processes and hosts; stale claims taken over."""

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time

from dplib.run import claims


def test_a_claim_is_exclusive_until_released(tmp_path):
    first = claims.take(tmp_path)
    assert first is not None and claims.take(tmp_path) is None
    record = claims.read(tmp_path)
    assert record["holders"] == [dict(host=socket.gethostname(), pid=os.getpid(), role="runner",
                                      started=record["holders"][0]["started"])]
    first.release()
    assert not (tmp_path / "claim.json").exists() and claims.take(tmp_path) is not None


def test_threads_racing_for_one_run_get_one_claim(tmp_path):
    won, barrier = [], threading.Barrier(16)

    def race():
        barrier.wait()
        if claims.take(tmp_path) is not None:
            won.append(1)

    threads = [threading.Thread(target=race) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


def _race_in_a_process(folder, start, results, everyone_raced):
    while time.time() < start:
        pass
    results.put(claims.take(folder) is not None)
    # hold the claim (stay alive) until every racer has tried: a racer that starts late on a busy
    # machine must find the winner alive, as a second runner would, not a dead holder to replace
    everyone_raced.wait(timeout=120)


def test_processes_racing_for_a_stale_claim_get_one_claim(tmp_path):
    # a claim left by a dead process on this host: every racer sees it stale, one replaces it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "claim.json").write_text(json.dumps({"token": "old", "heartbeat": time.time(), "holders": [
        {"host": socket.gethostname(), "pid": int(dead.stdout), "started": 1.0, "role": "runner"}]}))
    results, everyone_raced = multiprocessing.Queue(), multiprocessing.Event()
    start = time.time() + 1.0
    # five race at once; the sixth comes 2 s late, as a racer does on a busy machine
    racers = [multiprocessing.Process(target=_race_in_a_process, args=(tmp_path, start + 2.0 * (i == 5), results,
                                                                       everyone_raced)) for i in range(6)]
    for p in racers:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in racers)
    everyone_raced.set()
    for p in racers:
        p.join(timeout=60)
    assert outcomes == [False] * 5 + [True]
    assert claims.read(tmp_path)["token"] != "old"


def write_foreign(folder, heartbeat_age, job_id=None):
    (folder / "claim.json").write_text(json.dumps({
        "token": "theirs", "heartbeat": time.time() - heartbeat_age, "job_id": job_id,
        "holders": [{"host": "node-elsewhere", "pid": 1, "started": 1.0, "role": "run"}]}))


def test_another_hosts_claim_holds_while_its_heartbeat_is_fresh(tmp_path):
    write_foreign(tmp_path, heartbeat_age=10)
    assert not claims.is_stale(claims.read(tmp_path)) and claims.take(tmp_path) is None
    write_foreign(tmp_path, heartbeat_age=claims.STALE_AFTER_S + 10)
    assert claims.is_stale(claims.read(tmp_path)) and claims.take(tmp_path) is not None


def test_a_claim_naming_a_queued_slurm_job_holds_while_the_job_is_queued(tmp_path):
    write_foreign(tmp_path, heartbeat_age=claims.STALE_AFTER_S + 10, job_id="77_3")
    assert not claims.is_stale(claims.read(tmp_path), queue={"77_3", "77_4"})
    assert claims.is_stale(claims.read(tmp_path), queue={"77_4"})
    assert claims.is_stale(claims.read(tmp_path), queue=None)  # Slurm cannot be asked: the heartbeat decides


def test_a_reused_pid_does_not_hold_a_claim(tmp_path):
    me = {"host": socket.gethostname(), "pid": os.getpid(), "role": "runner"}
    (tmp_path / "claim.json").write_text(json.dumps({"token": "t", "heartbeat": time.time(),
                                                     "holders": [dict(me, started=12.0)]}))  # another start time
    assert claims.is_stale(claims.read(tmp_path))


def test_the_executing_process_joins_the_runners_claim_and_the_last_holder_removes_it(tmp_path):
    runner = claims.take(tmp_path, role="runner")
    assert claims.join(tmp_path, "wrong-token") is None  # held, and not by the token's owner
    run = claims.join(tmp_path, runner.token, role="run")
    assert run is not None and [h["role"] for h in claims.read(tmp_path)["holders"]] == ["runner", "run"]
    before = claims.read(tmp_path)["heartbeat"]
    time.sleep(0.01)
    assert run.heartbeat() and claims.read(tmp_path)["heartbeat"] > before
    assert run.set_job("5_1") and claims.read(tmp_path)["job_id"] == "5_1"
    run.release()
    assert (tmp_path / "claim.json").exists()
    runner.release()
    assert not (tmp_path / "claim.json").exists() and not runner.heartbeat()


def test_heartbeats_refresh_claims_in_the_background(tmp_path):
    claim = claims.take(tmp_path)
    before = claims.read(tmp_path)["heartbeat"]
    beats = claims.Heartbeats(every=0.05)
    beats.add(claim)
    # a busy machine may hold the thread back for a while: wait for a beat, up to 30 s
    deadline = time.monotonic() + 30
    while claims.read(tmp_path)["heartbeat"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    beats.stop()
    assert claims.read(tmp_path)["heartbeat"] > before


def test_an_exited_process_not_yet_reaped_holds_nothing(tmp_path):
    """A zombie (exited, its parent has not waited for it) still has a pid and a start time,
    but works under no claim: a runner killed while its parent was busy must not hold a run."""
    import psutil

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    holder = {"host": socket.gethostname(), "pid": child.pid, "started": psutil.Process(child.pid).create_time()}
    deadline = time.time() + 60
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.time() < deadline:
        time.sleep(0.05)
    assert psutil.pid_exists(child.pid)  # not reaped: the pid is still taken
    assert not claims.holder_alive(holder)
    child.wait()
