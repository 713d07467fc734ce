"""Claims: a run folder is executed by one process at a time, across runners and hosts.

Before a run executes, its folder gets `claim.json`:

    {"token": "...", "claimed": 1700000000.0, "heartbeat": 1700000030.0, "job_id": "1234_5" | null,
     "holders": [{"host": "login1", "pid": 4242, "started": 1699999000.0, "role": "runner"},
                 {"host": "node7", "pid": 777, "started": 1700000010.0, "role": "run"},
                 {"host": "node7", "pid": 778, "started": 1700000011.0, "role": "kernel"}]}

The claim is created exclusively (a complete temporary file hard-linked to the name: atomic
on local filesystems and on NFS), so two runners never both get it. The runner that claims
a run passes its token to the process that executes it, which joins as a second holder
(on a Slurm node, another host). Holders refresh the heartbeat every HEARTBEAT_S.

A claim is stale, and may be taken over, when none of its holders can still be working:
  - a holder on this host counts while its pid runs with the same start time (pids are reused);
    the executing process names its notebook kernel as a holder too, so a kernel that outlives
    a killed runner still holds its run until it ends;
  - a Slurm job named in the claim counts while it is in the queue (pending or running);
  - a holder on another host counts while the heartbeat is younger than STALE_AFTER_S.
Taking over, joining, refreshing and releasing happen under a lock file beside the claim.
"""

import contextlib
import fcntl
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from ..atomic import read_json, write_json_atomic

HEARTBEAT_S = 30
STALE_AFTER_S = 300  # a heartbeat this old, from another host, no longer holds a run
CLAIM = "claim.json"
_thread_lock = threading.Lock()  # flock excludes processes; this excludes this process's threads


def _process_started(pid):
    """The start time of process `pid` on this host, or None when it does not run (an exited
    process its parent has not reaped yet, a zombie, does not run: it holds nothing)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, TypeError):
        return None


def _me(role):
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_started(os.getpid()), "role": role}


def holder_alive(holder):
    """A holder on this host whose process still runs (the same process, not a reused pid)."""
    started = _process_started(holder.get("pid"))
    return started is not None and (holder.get("started") is None or abs(started - holder["started"]) < 1.0)


def is_stale(claim, queue=None, now=None):
    """Whether nobody can still be working under `claim` (see the module docstring).

    queue: the set of Slurm job ids in the queue (`dplib.run.slurm.queued_jobs()`), or None
    when Slurm cannot be asked."""
    if claim is None:
        return True
    here = socket.gethostname()
    holders = claim.get("holders", [])
    if any(h["host"] == here and holder_alive(h) for h in holders):
        return False
    if claim.get("job_id") and queue is not None and claim["job_id"] in queue:
        return False
    if any(h["host"] != here for h in holders):
        return (now or time.time()) - claim.get("heartbeat", 0) > STALE_AFTER_S
    return True


def read(directory):
    return read_json(Path(directory) / CLAIM)


@contextlib.contextmanager
def _locked(directory):
    with _thread_lock, open(Path(directory) / ".claim.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Claim:
    """A claim this process holds (or shares) on one run folder."""

    def __init__(self, directory, token, role):
        self.directory, self.token, self.role = Path(directory), token, role

    @property
    def path(self):
        return self.directory / CLAIM

    def _update(self, change):
        """Apply change(claim) under the lock while the claim is still ours; False if it is not."""
        with _locked(self.directory):
            claim = read(self.directory)
            if claim is None or claim.get("token") != self.token:
                return False
            if change(claim) is not False:
                claim["heartbeat"] = time.time()
                write_json_atomic(self.path, claim)
            return True

    def heartbeat(self):
        return self._update(lambda claim: None)

    def set_job(self, job_id, executor="slurm"):
        """Name the queued job that holds the run (its executor's queue keeps the claim alive)."""
        return self._update(lambda claim: claim.update(job_id=str(job_id), executor=executor))

    def add_holder(self, pid, role):
        """Name another process of this host among the holders (the notebook kernel a run
        executes in: it runs in a session of its own and can outlive the process that started it)."""
        holder = {"host": socket.gethostname(), "pid": pid, "started": _process_started(pid), "role": role}
        return self._update(lambda claim: claim["holders"].append(holder))

    def release(self):
        """Leave the claim, with any holder of this host that no longer runs; the last holder
        removes the file."""
        with _locked(self.directory):
            claim = read(self.directory)
            if claim is None or claim.get("token") != self.token:
                return
            here = socket.gethostname()
            me = (here, os.getpid(), self.role)
            claim["holders"] = [h for h in claim["holders"] if (h["host"], h["pid"], h.get("role")) != me
                                and (h["host"] != here or holder_alive(h))]
            if claim["holders"]:
                write_json_atomic(self.path, claim)
            else:
                self.path.unlink()


def take(directory, role="runner", queue=None):
    """Claim a run folder: a Claim, or None when someone else holds it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    claim = {"token": uuid.uuid4().hex, "claimed": now, "heartbeat": now, "job_id": None, "holders": [_me(role)]}
    temporary = directory / f".claim.{os.getpid()}.{threading.get_ident()}.tmp"
    write_json_atomic(temporary, claim)
    try:
        os.link(temporary, directory / CLAIM)  # fails if a claim exists: exclusive
        return Claim(directory, claim["token"], role)
    except FileExistsError:
        with _locked(directory):  # a stale claim is replaced by one process only
            if not is_stale(read(directory), queue=queue):
                return None
            os.replace(temporary, directory / CLAIM)
            return Claim(directory, claim["token"], role)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def join(directory, token, role="run", queue=None):
    """Join the claim whose token a runner handed over; without a token (or when that claim is
    gone and nobody else holds the run) take it. None when another process holds the run."""
    if token:
        with _locked(directory):
            claim = read(directory)
            if claim is not None and claim.get("token") == token:
                claim["holders"] = [h for h in claim["holders"] if holder_alive(h) or h["host"] != socket.gethostname()]
                claim["holders"].append(_me(role))
                claim["heartbeat"] = time.time()
                write_json_atomic(Path(directory) / CLAIM, claim)
                return Claim(directory, token, role)
    return take(directory, role=role, queue=queue)


def holder_hosts(claim):
    """The hosts a claim's holders run on, the executing process's first."""
    holders = sorted(claim.get("holders", []), key=lambda h: h.get("role") != "run")
    return list(dict.fromkeys(h["host"] for h in holders))


class Heartbeats:
    """A daemon thread refreshing the heartbeat of every claim added to it."""

    def __init__(self, every=HEARTBEAT_S):
        self.claims, self.every = set(), every
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="dplib-heartbeat", daemon=True)
        self._thread.start()

    def add(self, claim):
        with self._lock:
            self.claims.add(claim)

    def discard(self, claim):
        with self._lock:
            self.claims.discard(claim)

    def _run(self):
        while not self._stop.wait(self.every):
            with self._lock:
                claims = list(self.claims)
            for claim in claims:
                with contextlib.suppress(OSError):
                    claim.heartbeat()

    def stop(self):
        self._stop.set()
