"""Grid runner throughput: the smoke grid with 2 workers vs 1 worker, and the per-run
overhead (kernel start, papermill, saving: a run's wall time minus its cells' time).

    python bench/grid.py [--params params/b1.yaml] [--repeat 2]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dplib.run import grid, plan


def timed_grid(params, workers, runs_dir):
    start = time.perf_counter()
    counts = grid.run_grid(params, smoke=True, workers=workers, runs_dir=runs_dir)
    seconds = time.perf_counter() - start
    if counts["completed"] != sum(counts.values()):
        sys.exit(f"the smoke grid did not complete: {counts}")
    overheads = [json.loads(p.read_text())["overhead_seconds"] for p in Path(runs_dir).glob("*/*/status.json")]
    return seconds, overheads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params/b1.yaml")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    spec = plan.load_spec(args.params, smoke=True)
    data_root = Path(spec["parameters"]["data_root"])
    if not data_root.exists() and spec["benchmark"] == "b1":
        from dplib.data import bapps

        bapps.write_fixture(data_root)
    times = {1: [], 2: []}
    overheads = []
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(args.repeat):
            for workers in (1, 2):  # alternated, so machine noise hits both alike
                seconds, overhead = timed_grid(args.params, workers, Path(scratch) / f"{attempt}-{workers}")
                times[workers].append(seconds)
                overheads += overhead
    one, two = min(times[1]), min(times[2])
    runs = len(overheads) // (2 * args.repeat)
    print(f"\n{spec['benchmark']} smoke grid, {runs} runs: 1 worker {one:.1f} s, 2 workers {two:.1f} s, "
          f"speed-up {one / two:.2f}x")
    print(f"per-run overhead (kernel start, papermill, saving): median {statistics.median(overheads):.2f} s, "
          f"max {max(overheads):.2f} s over {len(overheads)} runs")


if __name__ == "__main__":
    main()
