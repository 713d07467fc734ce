"""Do the interactive notebooks ever hang headless? Execute them through papermill many times
in a row while other processes keep every core busy, and count the executions that hang.

    python bench/notebook_stress.py                       # 50 rounds of explore + analysis notebooks
    python bench/notebook_stress.py --revision ed66140    # the same, with the notebooks of a commit

Each execution runs in its own process with a time limit (`--limit`); one that hits it is a
hang (its processes are killed). Prints, per notebook: executions, hangs, failures, median
and slowest seconds.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).parents[1]
NOTEBOOKS = ("explore", "analysis_figures", "analysis_tables")


def burn():
    while True:
        pass


def notebook_file(name, revision, folder):
    """The notebook as committed at `revision` (None: the working tree)."""
    if revision is None:
        return ROOT / "notebooks" / f"{name}.ipynb"
    text = subprocess.run(["git", "show", f"{revision}:notebooks/{name}.ipynb"], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60).stdout
    path = Path(folder) / f"{name}@{revision}.ipynb"
    path.write_text(text)
    return path


def execute(notebook, out_dir, limit):
    """Seconds and outcome ('ok', 'hang', 'error') of one papermill execution in its own process."""
    code = ("import sys, papermill; papermill.execute_notebook(sys.argv[1], sys.argv[2], cwd=sys.argv[3], "
            "progress_bar=False, start_timeout=300, parameters=dict(out_dir=sys.argv[4], "
            "attribute_input_size=96))")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, str(notebook), str(Path(out_dir) / "executed.ipynb"),
                                str(ROOT), str(out_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=limit)
        outcome = "ok" if process.returncode == 0 else "error"
        if outcome == "error":
            print(stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {process.returncode}", file=sys.stderr)
    except subprocess.TimeoutExpired:
        tree = psutil.Process(process.pid).children(recursive=True) + [psutil.Process(process.pid)]
        for p in tree:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        process.communicate()
        outcome = "hang"
    return time.perf_counter() - started, outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS))
    parser.add_argument("--limit", type=float, default=300, help="seconds after which an execution counts as hung")
    parser.add_argument("--load", type=int, default=os.cpu_count(), help="busy processes beside the executions")
    parser.add_argument("--revision", help="use the notebooks committed at this git revision")
    args = parser.parse_args()

    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    results = {name: [] for name in args.notebooks}
    try:
        with tempfile.TemporaryDirectory() as folder:
            files = {name: notebook_file(name, args.revision, folder) for name in args.notebooks}
            for round_ in range(args.rounds):
                for name in args.notebooks:
                    seconds, outcome = execute(files[name], Path(folder) / name, args.limit)
                    results[name].append((seconds, outcome))
                print(f"round {round_ + 1}/{args.rounds}: " + ", ".join(
                    f"{n} {results[n][-1][1]} {results[n][-1][0]:.0f} s" for n in args.notebooks), flush=True)
    finally:
        for b in burners:
            b.terminate()
    print(f"\n{args.rounds} rounds, {args.load} busy processes, limit {args.limit:.0f} s, notebooks of "
          f"{args.revision or 'the working tree'}:")
    summary = {}
    for name, runs in results.items():
        seconds = [s for s, _ in runs]
        summary[name] = dict(executions=len(runs), hangs=sum(o == "hang" for _, o in runs),
                             errors=sum(o == "error" for _, o in runs), median_s=round(statistics.median(seconds), 1),
                             slowest_s=round(max(seconds), 1))
        print(f"  {name:18s} " + ", ".join(f"{k} {v}" for k, v in summary[name].items()))
    print(json.dumps(summary))
    return 1 if any(s["hangs"] or s["errors"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
