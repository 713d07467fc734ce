"""Slurm: the request checked against the cluster before anything is submitted, the queue
asked which jobs still wait or run, and the grid submitted as a job array through submitit.

Resources come from the params file's `slurm` block (submitit's names: timeout_min,
gpus_per_node, cpus_per_task, mem_gb, slurm_partition, ...) and `--slurm key=value`.
"""

import math
import re
import shutil
import subprocess
import time
from pathlib import Path
from ..errors import InputError, Unavailable

QUEUE_POLL_S = 5
LEFT_QUEUE_GRACE_S = 20  # a job gone from the queue gets this long to write its result file


def _run(command, timeout=30):
    """stdout of a Slurm command, or None when it cannot be run or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def available():
    """Whether a Slurm controller answers here (sinfo works)."""
    return _run(["sinfo", "-h", "-o", "%P"], timeout=15) is not None


def queued_jobs():
    """Ids of the jobs in the queue, pending or running (array tasks as '123_4', and the
    not-yet-split pending part of an array as its tasks), or None when squeue cannot be asked."""
    out = _run(["squeue", "-h", "-r", "-o", "%i"])
    return None if out is None else set(out.split())


def parse_time_limit(text):
    """Slurm's time format ('infinite', 'D-HH:MM:SS', 'HH:MM:SS', 'MM:SS', 'MM') in minutes."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a"):
        return math.inf
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60


def _gpus(gres):
    """GPU count of a node from sinfo's GRES column ('gpu:a100:4(S:0-1)', '(null)')."""
    return sum(int(m.group(1)) for m in re.finditer(r"gpu(?::[^:,()]+)?:(\d+)", gres))


def nodes():
    """The cluster's nodes: [{name, partition, default, cpus, mem_mb, gpus, time_limit_min}]."""
    out = _run(["sinfo", "-h", "-N", "-o", "%N|%P|%c|%m|%G|%l"])
    if out is None:
        raise Unavailable("sinfo did not answer: is this a Slurm login node? (--executor slurm needs one; "
                           "--cluster local runs the same path without Slurm)")
    rows = []
    for line in out.splitlines():
        name, partition, cpus, memory, gres, limit = line.split("|")
        rows.append(dict(name=name, partition=partition.rstrip("*"), default=partition.endswith("*"),
                         cpus=int(cpus), mem_mb=int(re.sub(r"\D", "", memory) or 0), gpus=_gpus(gres),
                         time_limit_min=parse_time_limit(limit)))
    return rows


def check_request(resources, cluster_nodes=None):
    """Stop with a clear error when no node of the cluster can run one task of this request
    (a GPU on a cluster without one makes sbatch fail; more than any node has waits forever)."""
    cluster_nodes = nodes() if cluster_nodes is None else cluster_nodes
    partition = resources.get("slurm_partition")
    if partition and partition not in {n["partition"] for n in cluster_nodes}:
        raise InputError(f"Slurm partition {partition!r} does not exist; partitions: "
                         f"{', '.join(sorted({n['partition'] for n in cluster_nodes}))} (--slurm slurm_partition=NAME)")
    candidates = [n for n in cluster_nodes if (n["partition"] == partition if partition else n["default"])]
    candidates = candidates or cluster_nodes
    asked = {"gpus_per_node": resources.get("gpus_per_node") or 0, "cpus_per_task": resources.get("cpus_per_task") or 1,
             "mem_gb": resources.get("mem_gb") or 0, "timeout_min": resources.get("timeout_min") or 0}
    fits = [n for n in candidates if n["gpus"] >= asked["gpus_per_node"] and n["cpus"] >= asked["cpus_per_task"]
            and n["mem_mb"] >= asked["mem_gb"] * 1024 and n["time_limit_min"] >= asked["timeout_min"]]
    if fits:
        return fits
    largest = {"gpus_per_node": max(n["gpus"] for n in candidates), "cpus_per_task": max(n["cpus"] for n in candidates),
               "mem_gb": max(n["mem_mb"] for n in candidates) // 1024,
               "timeout_min": max(n["time_limit_min"] for n in candidates)}
    too_big = [f"{key}={asked[key]} (at most {largest[key]})" for key in asked if asked[key] > largest[key]]
    detail = ", ".join(too_big) or "no single node has all of " + ", ".join(f"{k}={v}" for k, v in asked.items())
    raise InputError(f"no node of {'partition ' + repr(partition) if partition else 'the cluster'} can run this "
                     f"request: {detail}; lower it in the params file's slurm block or with --slurm KEY=VALUE "
                     f"(e.g. --slurm gpus_per_node=0)")


def run_array(runs, spec, cluster, workers, progress, resources, on_done, submitted=None):
    """Submit `runs` [(folder, claim)] as one job array and wait for every task to end.

    on_done(folder, claim, note) is called once per run when its job has ended, or left the
    queue without a result (cancelled while pending: `note` says so). submitted(job_ids) is
    called after submission."""
    import submitit

    from .execute import execute_run

    folder = Path(runs[0][0]).parent.parent / "_submitit" / spec["name"]
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    resources = dict(resources)
    resources.setdefault("slurm_array_parallelism", workers)
    executor.update_parameters(**resources)
    jobs = executor.map_array(execute_run, [str(f) for f, _ in runs], [c.token for _, c in runs])
    pending = {job: run for job, run in zip(jobs, runs)}
    for job, (_, claim) in pending.items():
        claim.set_job(job.job_id)
        progress.started()
    if submitted:
        submitted([job.job_id for job in jobs])
    gone_since, queue, last_poll = {}, None, 0.0
    while pending:
        if cluster == "slurm" and time.time() - last_poll > QUEUE_POLL_S:
            queue, last_poll = queued_jobs(), time.time()
        for job in list(pending):
            note = None
            if not job.done():
                if queue is None:  # cannot ask Slurm (or submitit's local cluster): wait for the result
                    continue
                if job.job_id in queue:
                    gone_since.pop(job, None)
                    continue
                # out of the queue without a result file: cancelled while pending, or killed
                if time.time() - gone_since.setdefault(job, time.time()) < LEFT_QUEUE_GRACE_S:
                    continue
                note = f"Slurm job {job.job_id} left the queue without a result (cancelled, or killed)"
            folder, claim = pending.pop(job)
            on_done(folder, claim, note)
        time.sleep(0.5)
