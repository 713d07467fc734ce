"""One run folder executed with papermill, so that it always ends, and ends recorded.

`execute_run(folder)` is what a local grid worker's subprocess (`python -m dplib.run.execute
FOLDER`, which loads neither torch nor the CLI: the kernel does the computing) and a Slurm job
call:

1. It claims the folder (`dplib.run.claims`; a runner's token is joined): a run held by another
   live process is left alone, so no run executes twice. The notebook kernel, once started, is
   named among the holders too: a kernel that outlives a `kill -9` of its runner holds the run
   until it ends.
2. It appends one line to `attempts.jsonl` and writes `status.json` as "running".
3. It executes the notebook into `notebook.ipynb` under two limits from `params.json`
   (`timeouts: {cell_s, run_s}`): papermill's per-cell timeout, and a watchdog thread that,
   past run_s, kills the kernel and every process under it even when the kernel is wedged.
   A kernel that dies before it answers, with no cell run (two kernels starting at once took
   the same TCP port), is started again, up to KERNEL_STARTS times, each failure recorded in
   `status.json` as `kernel_start_failures`.
4. It records how the run ended, in `status.json`:
     completed      the notebook wrote result.json
     failed         Timeout (with the cell and the limit), DeadKernel (the kernel died: out of
                    memory, kill -9), or the notebook's own error (name, message, cell)
     interrupted    SIGTERM (Slurm's cancel, preemption or time limit; `kill`): the kernel is
                    passed the signal, so a training loop checkpoints and stops (dplib.train),
                    and the next `dplib grid run` resumes the run
   Cell numbers are those of the executed notebook (papermill inserts the injected-parameters
   cell after the `parameters` cell).
"""

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from ..atomic import DiskFullError
from ..benchmarks.record import environment
from . import claims
from .folder import RunFolder

KERNEL_START_TIMEOUT = 300  # seconds; papermill's 60 s default is too short on a loaded 2-core machine
TERM_GRACE_S = 60           # after SIGTERM, the kernel has this long to checkpoint and stop
KILL_GRACE_S = 60           # after the watchdog killed the kernel, papermill has this long to notice
KERNEL_STARTS = 3           # tries to start a kernel that dies before it answers (see _died_starting)


def descendants():
    """Every process under this one (the kernel, its data-loading workers, ...)."""
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process().children(recursive=True)
    return []


def kill_processes(processes, sig=signal.SIGKILL):
    for process in processes:
        with contextlib.suppress(Exception):
            process.send_signal(sig)


def _end(processes, wait_s=10):
    """Kill `processes` and wait for them (reaping this process's children), so that the claim
    released next no longer names a running kernel."""
    import psutil

    kill_processes(processes)
    with contextlib.suppress(Exception):
        psutil.wait_procs(processes, timeout=wait_s)


def current_cell(notebook_path):
    """Index (in the executed notebook) of the last cell papermill started, or None."""
    try:
        cells = json.loads(Path(notebook_path).read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return None
    started = [i for i, c in enumerate(cells) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    return started[-1] if started else None


def describe_error(error):
    name = getattr(error, "ename", type(error).__name__)
    message = getattr(error, "evalue", str(error))
    cell = getattr(error, "cell_index", None)
    return {"name": name, "message": str(message)[:2000], "cell": cell,
            "traceback": traceback.format_exception_only(type(error), error)[-1][:2000]}


class _Watchdog:
    """Past `seconds`, kill every process under this one; if papermill still has not returned
    `KILL_GRACE_S` later, record the failure and end this process."""

    def __init__(self, seconds, on_hard_exit):
        self.fired = False
        self.on_hard_exit = on_hard_exit
        self.timers = []
        if seconds:
            self._start(seconds, self._fire)

    def _start(self, seconds, action):
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def _fire(self):
        self.fired = True
        kill_processes(descendants())
        self._start(KILL_GRACE_S, self.on_hard_exit)

    def cancel(self):
        for timer in self.timers:
            timer.cancel()


class _KernelHolder:
    """Names the notebook kernel among the claim's holders as soon as it starts. jupyter_client
    starts a kernel in a session of its own, so killing the runner's process group (`kill -9`,
    the OOM killer) does not reach it: ipykernel's parent poller ends it within a second or so,
    but a kernel inside a C call that holds the GIL runs on. While it runs, its run stays held
    and no rerun executes the same notebook beside it."""

    def __init__(self, claim, every=0.2):
        self.claim, self.every, self.named = claim, every, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dplib-kernel-holder", daemon=True)
        self._thread.start()

    def _run(self):
        import psutil

        while not self._stop.wait(self.every):
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process().children():
                    if child.pid not in self.named and "ipykernel" in " ".join(child.cmdline()):
                        self.named.add(child.pid)
                        with contextlib.suppress(OSError):
                            self.claim.add_holder(child.pid, "kernel")

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


class _Termination:
    """SIGTERM while a run executes: pass it to the kernel (which checkpoints a training run and
    stops), record `interrupted` at once, and kill what is left after TERM_GRACE_S."""

    def __init__(self, record_interrupted):
        self.received = False
        self.record_interrupted = record_interrupted
        self.previous = None
        self.timer = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        if self.received:
            return
        self.received = True
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            kill_processes(psutil.Process().children(), signal.SIGTERM)  # the kernel: it stops its workers
        with contextlib.suppress(OSError):
            self.record_interrupted()
        self.timer = threading.Timer(TERM_GRACE_S, lambda: kill_processes(descendants()))
        self.timer.daemon = True
        self.timer.start()

    def restore(self):
        if self.timer:
            self.timer.cancel()
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _interrupted(cell):
    """The error record of a run stopped by SIGTERM or Ctrl-C, written with the state as the signal
    comes: Slurm's SIGKILL (KillWait after its SIGTERM) may come before the run's own end on a busy node."""
    return {"name": "Interrupted", "cell": cell,
            "message": "stopped by SIGTERM or Ctrl-C (a Slurm cancel, preemption or time limit; kill); a training "
                       "run saved a checkpoint: `dplib grid run` resumes it"}


def _classify(error, watchdog, termination, limits, notebook):
    """(state, error record) for how papermill ended."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    cell = current_cell(notebook)
    if termination.received or getattr(error, "ename", None) == "RunInterrupted" or isinstance(error, KeyboardInterrupt):
        return "interrupted", _interrupted(cell)
    if watchdog.fired:
        return "failed", {"name": "Timeout", "cell": cell, "limit": "run_s", "limit_s": limits.get("run_s"),
                          "message": f"the run exceeded its limit of {limits.get('run_s')} s (timeouts.run_s) in cell "
                                     f"{cell}; the kernel and its processes were killed"}
    if isinstance(error, CellTimeoutError):
        return "failed", {"name": "Timeout", "cell": cell, "limit": "cell_s", "limit_s": limits.get("cell_s"),
                          "message": f"cell {cell} exceeded its limit of {limits.get('cell_s')} s (timeouts.cell_s); "
                                     "the kernel and its processes were killed"}
    if isinstance(error, DeadKernelError):
        return "failed", {"name": "DeadKernel", "cell": cell,
                          "message": f"the kernel died while running cell {cell} (out of memory, or killed)"}
    return "failed", describe_error(error)


def _died_starting(error, notebook):
    """The kernel died before it answered its first request, and no cell ran. jupyter_client
    picks a kernel's five TCP ports by binding port 0 and letting go; a second kernel starting at
    the same moment on the machine can take one of them before this kernel binds it, and ipykernel
    then exits with 'Address already in use'. Nothing of the notebook ran, so starting the kernel
    once more, on fresh ports, is safe. (Unix-socket transport would avoid the race, but a killed
    kernel is then no longer seen as dead: see issue 25.)"""
    return (isinstance(error, RuntimeError) and "Kernel died before replying to kernel_info" in str(error)
            and current_cell(notebook) is None)


def _overhead(notebook_path, total_seconds):
    """Seconds of a run not spent executing cells: kernel start, papermill, saving."""
    try:
        cells = json.loads(Path(notebook_path).read_text())["cells"]
        executing = sum(c.get("metadata", {}).get("papermill", {}).get("duration") or 0 for c in cells)
        return round(total_seconds - executing, 3)
    except (OSError, ValueError, KeyError):
        return None


def _execute_notebook(folder, spec, status, limits, stopping):
    """papermill on the run's notebook; a kernel that died before it answered (two kernels took one
    port) is started again on fresh ports, up to KERNEL_STARTS times, unless the run is being
    stopped (`stopping()`), each failed start recorded in status.json."""
    import papermill

    for start in range(1, KERNEL_STARTS + 1):
        try:
            papermill.execute_notebook(spec["notebook"], str(folder.notebook), parameters=spec["parameters"],
                                       progress_bar=False, kernel_name="python3",
                                       cwd=spec.get("cwd") or os.getcwd(), start_timeout=KERNEL_START_TIMEOUT,
                                       execution_timeout=limits.get("cell_s"))
            return
        except RuntimeError as died:
            if start == KERNEL_STARTS or stopping() or not _died_starting(died, folder.notebook):
                raise
            # recorded, not hidden: status.json lists every kernel start that failed
            status.setdefault("kernel_start_failures", []).append(
                {"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "message": str(died)[:500]})
            folder.write_status(status)
            print(f"dplib: {spec['run_id']}: the kernel died before it started ({died}); starting it again "
                  f"({start + 1} of {KERNEL_STARTS})", file=sys.stderr)


def execute_run(directory, token=None):
    """Execute one prepared run folder; returns its final state (see the module docstring)."""
    folder = RunFolder(directory)
    directory = folder.path
    if folder.state() == "completed":
        return "completed"
    spec = folder.params()
    claim = claims.join(directory, token, role="run")
    if claim is None:
        return "running"  # another process holds it: leave it alone
    limits, output, started = spec.get("timeouts") or {}, folder.notebook, time.time()
    status = {"state": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(),
              "run_id": spec["run_id"], "timeouts": limits, **environment()}
    heartbeats = claims.Heartbeats()
    heartbeats.add(claim)

    def finish(state, error=None):
        ended = time.time()
        status.update(state=state, ended=time.strftime("%Y-%m-%dT%H:%M:%S"), seconds=round(ended - started, 3),
                      overhead_seconds=_overhead(output, ended - started))
        if error:
            status["error"] = error
        folder.write_status(status)

    def hard_exit():  # papermill did not return after the kernel was killed: record and leave
        with contextlib.suppress(Exception):
            finish(*_classify(TimeoutError(), watchdog, termination, limits, output))
            claim.release()
        os._exit(124)

    watchdog = _Watchdog(limits.get("run_s"), hard_exit)
    termination = _Termination(lambda: folder.write_status(dict(status, state="interrupted",
                                                                error=_interrupted(current_cell(output)))))
    kernel_holder, state, error = _KernelHolder(claim), "failed", None
    try:
        folder.append_attempt()
        folder.write_status(status)
        _execute_notebook(folder, spec, status, limits, lambda: termination.received or watchdog.fired)
        if folder.result() is None:
            raise RuntimeError("the notebook finished without writing result.json (its last cell must call "
                               "dplib.benchmarks.record.write_result)")
        state = "completed"
    except BaseException as caught:  # a failing run is recorded, and the grid goes on
        state, error = _classify(caught, watchdog, termination, limits, output)
        if isinstance(caught, DiskFullError):
            error["name"] = "DiskFull"
        if isinstance(caught, KeyboardInterrupt):
            raise
    finally:
        watchdog.cancel()
        kernel_holder.stop()
        _end(descendants())  # nothing of the run outlives it
        heartbeats.stop()
        try:
            finish(state, error)
        except DiskFullError as full:
            print(f"dplib: could not record the run's end ({state}): {full}", file=sys.stderr)
        termination.restore()
        claim.release()
    return state


def main(argv=None):
    """`python -m dplib.run.execute FOLDER [--claim-token TOKEN]`: one run in its own process, as
    the local executor starts it (internal; exit 0 when it completed). A bug shows its traceback."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dplib.run.execute", description=main.__doc__.split(":")[0])
    parser.add_argument("folder", help="a run folder the grid prepared")
    parser.add_argument("--claim-token", help="the runner's claim on the folder, to join")
    args = parser.parse_args(argv)
    return 0 if execute_run(args.folder, token=args.claim_token) == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
