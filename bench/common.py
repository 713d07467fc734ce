"""Timing helpers shared by the bench scripts: medians of repeated runs, measured side by side."""

import statistics
import time

import torch


def median_seconds(fn, repeat=5, warmup=1):
    """Median wall time of fn() over `repeat` runs after `warmup` runs (synchronising CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(fns, repeat=5, warmup=1):
    """Median seconds of each callable in `fns` ({name: fn}), runs interleaved so that
    machine noise hits all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
