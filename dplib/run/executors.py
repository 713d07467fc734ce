"""Where a grid's runs execute: an executor, one small interface with two implementations here
(local processes and a Slurm job array) and any number of one's own.

An executor is given the run folders still to do (each prepared: params.json written) and
executes each through `python -m dplib.run.execute FOLDER` or `dplib.run.execute.execute_run(FOLDER,
token)`, which claims, runs, bounds and records it; the executor only decides where and when.

    class Executor:
        name                       how --executor and params files name it
        check(spec)                before anything is written: can it run this grid? (Slurm: the
                                   request against the cluster's nodes) -> None or a UserError
        run(folders, spec, workers, progress, heartbeats)
                                   execute them and return when every one has ended; claim each
                                   (dplib.run.claims.take) just before it starts, skip one another
                                   runner holds (progress.skipped()), call progress.started() and
                                   progress.finished(state); heartbeats keeps the claims alive
        queued()                   the job ids of its queue still pending or running, or None when it
                                   has no queue: a claim naming such a job (claim.set_job(id, name))
                                   stays alive while its job waits, though no process beats for it
        cancel()                   stop what it started (SIGTERM to `dplib grid run`)

A scheduler of one's own (PBS, LSF, an in-house queue) is one module defining a subclass and
registering it, like a benchmark: `register_executor(MyExecutor)` in a module the runner
imports (DPLIB_EXECUTORS names such modules, comma-separated), or the entry point group
"dplib.executors" (name = "package.module:MyExecutor"). docs/operating.md shows one.
"""

import concurrent.futures
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
from importlib.metadata import entry_points

from ..errors import InputError, Unavailable
from . import claims, slurm
from .execute import current_cell, kill_processes
from .folder import RunFolder, run_state

ENTRY_POINTS = "dplib.executors"
MODULES_VARIABLE = "DPLIB_EXECUTORS"


class Executor:
    """The interface (see the module docstring); the defaults suit an executor without a queue."""

    name = ""

    def __init__(self, **options):
        self.options = options

    def check(self, spec):
        """Refuse (a UserError) a grid this executor cannot run, before anything is written."""

    def run(self, folders, spec, workers, progress, heartbeats):
        raise NotImplementedError

    def queued(self):
        return None

    def cancel(self):
        """Stop what it started; runs it submitted elsewhere may go on (they keep their claims)."""


# ----- the local executor: processes on this machine ------------------------------------------

BACKSTOP_GRACE_S = 300  # the local worker kills a run's process this long after its own watchdog should have


def _worker_environments(workers):
    """One environment per worker slot: its own GPU when there are GPUs, else a share of the CPU
    threads (at most the OMP_NUM_THREADS the operator set)."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    threads = max(1, (os.cpu_count() or 1) // workers)
    # an OMP_NUM_THREADS the operator set caps each worker's share: on a machine shared with other
    # work, threads beyond the cores left spin at every parallel region and burn CPU for nothing
    # (a B2 step took 6x the CPU beside another busy process)
    operators = os.environ.get("OMP_NUM_THREADS", "").strip()
    if operators.isdigit() and int(operators) > 0:
        threads = min(threads, int(operators))
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


LOCAL = _LocalProcesses()


def _run_local(directories, workers, progress, spec, heartbeats):
    """Each run in its own process (`python -m dplib.run.execute`), `workers` at a time. A run is claimed
    just before it starts, so two runners on one runs folder share the work."""
    environments = _worker_environments(workers)
    free_slots = list(range(workers))
    lock = threading.Lock()
    run_s = spec["timeouts"]["run_s"]

    def one(directory):
        if LOCAL.stopping:
            return
        folder = RunFolder(directory)
        claim = claims.take(directory, role="runner")
        if claim is None:  # another runner got there first
            progress.skipped()
            return
        heartbeats.add(claim)
        with lock:
            slot = free_slots.pop()
        progress.started()
        try:
            with open(folder.log, "w") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "dplib.run.execute", str(directory), "--claim-token", claim.token],
                    env=environments[slot], stdout=log, stderr=subprocess.STDOUT)
                try:
                    with LOCAL.tracked(process):
                        process.wait(timeout=run_s + BACKSTOP_GRACE_S if run_s else None)
                except subprocess.TimeoutExpired:  # its own watchdog failed to end it: end it here
                    import psutil

                    with contextlib.suppress(psutil.Error):
                        tree = psutil.Process(process.pid).children(recursive=True) + [psutil.Process(process.pid)]
                        kill_processes(tree)
                    process.wait()
                    folder.mark_end("failed", {"name": "Timeout", "limit": "run_s", "limit_s": run_s,
                                                 "cell": current_cell(folder.notebook),
                                                  "message": f"the run exceeded its limit of {run_s} s and did not "
                                                             "stop itself; its processes were killed"})
            if process.returncode:
                folder.mark_end("failed", {"name": "ProcessDied", "cell": None,
                                             "message": f"exit code {process.returncode}: {folder.log_tail()}"})
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
        RunFolder(directory).mark_end("interrupted", {
            "name": "Interrupted", "cell": None, "message": note or "the Slurm job ended without recording the run's end"})
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


class LocalExecutor(Executor):
    """Each run in its own process on this machine, `workers` at a time, one GPU each when there
    are GPUs (dplib.run.grid's worker environments)."""

    name = "local"

    def run(self, folders, spec, workers, progress, heartbeats):
        _run_local(folders, workers, progress, spec, heartbeats)

    def cancel(self):
        LOCAL.terminate()


class SlurmExecutor(Executor):
    """One Slurm job array through submitit; option cluster: "slurm", or "local" (submitit's local
    executor: the same path without a controller, for trying it here)."""

    name = "slurm"

    def __init__(self, cluster="slurm", **options):
        super().__init__(cluster=cluster, **options)
        self.cluster = cluster

    def check(self, spec):
        from . import slurm

        if self.cluster == "slurm":
            slurm.check_request(spec["slurm"])

    def run(self, folders, spec, workers, progress, heartbeats):
        _run_slurm(folders, spec, self.cluster, workers, progress, heartbeats)

    def queued(self):
        from . import slurm

        return slurm.queued_jobs() if self.cluster == "slurm" else None


_REGISTERED = {"local": LocalExecutor, "slurm": SlurmExecutor}


def register_executor(cls, replace=False):
    """Make an Executor subclass available by its `name` (--executor NAME)."""
    if not (isinstance(cls, type) and issubclass(cls, Executor) and cls.name):
        raise InputError(f"{cls!r} is not a dplib.run.executors.Executor subclass with a name")
    if cls.name in _REGISTERED and _REGISTERED[cls.name] is not cls and not replace:
        raise InputError(f"an executor called {cls.name!r} is registered already; pass replace=True to redefine it")
    _REGISTERED[cls.name] = cls
    return cls


def _discover():
    for module in filter(None, (m.strip() for m in os.environ.get(MODULES_VARIABLE, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise Unavailable(f"{MODULES_VARIABLE} names the module {module!r}, which cannot be imported "
                              f"({error})") from None
    for point in entry_points(group=ENTRY_POINTS):
        register_executor(point.load(), replace=True)


def names():
    """Every executor known here: the built-in ones, then those of DPLIB_EXECUTORS and entry points."""
    _discover()
    return list(_REGISTERED)


def executor(name, **options):
    """An executor by name, with its options (SlurmExecutor: cluster)."""
    known = names()
    if name not in known:
        raise InputError(f"unknown executor {name!r}; choose one of {', '.join(known)} (your own: "
                         f"dplib.run.executors.register_executor)")
    cls = _REGISTERED[name]
    accepted = {k: v for k, v in options.items() if k != "cluster" or cls is SlurmExecutor}
    return cls(**accepted)


def queue_of(claim):
    """The queue that keeps `claim` alive: its executor's queued job ids (claims name the
    executor of their job; older ones, without, were Slurm's), or None."""
    if not claim or not claim.get("job_id"):
        return None
    name = claim.get("executor", "slurm")
    return executor(name).queued() if name in names() else None
