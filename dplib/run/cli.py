"""Command line: `dplib grid run|status|collect PARAMS` and `dplib data download|fixtures NAME`."""

import argparse
import sys

from tabulate import tabulate


def _grid(args):
    from . import grid, plan

    if args.command == "execute":  # internal: one run, in its own process
        from .execute import execute_run

        return 0 if execute_run(args.target, token=args.claim_token) == "completed" else 1
    if args.command == "run":
        grid.install_signal_handlers()
        counts = grid.run_grid(args.target, smoke=args.smoke, only=plan.parse_only(args.only), workers=args.workers,
                               executor=args.executor, retry_failed=args.retry_failed, runs_dir=args.runs_dir,
                               cluster=args.cluster, timeout_run=args.timeout_run,
                               slurm_overrides=plan.parse_assignments(args.slurm), grid_file=args.grid)
        print("summary: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n))
        if counts["running"] or counts["queued"]:
            print(f"{counts['running'] + counts['queued']} run(s) are held by another runner or a queued Slurm job; "
                  "`dplib grid status` shows where")
        if counts["failed"]:
            print(f"{counts['failed']} run(s) failed: `dplib grid status {args.target}"
                  f"{' --smoke' if args.smoke else ''}` shows why; --retry-failed reruns them", file=sys.stderr)
        return 1 if counts["failed"] or counts["interrupted"] or counts["pending"] else 0
    if args.command == "status":
        table = grid.status_table(args.target, smoke=args.smoke, runs_dir=args.runs_dir, grid_file=args.grid)
        print(tabulate(table, headers="keys", showindex=False))
        print("\n" + ", ".join(f"{n} {s}" for s, n in table.state.value_counts().items()))
        return 0
    if args.command == "collect":
        out, table = grid.collect(args.target, smoke=args.smoke, runs_dir=args.runs_dir, out=args.out,
                                  grid_file=args.grid)
        print(f"{len(table)} rows from {table.run_id.nunique()} runs -> {out}")
        return 0
    raise AssertionError(args.command)


def _data(args):
    from ..data import registry

    if args.command == "download":
        path = registry.download(args.name, args.root, include_optional=args.all)
        print(f"{args.name} is ready in {path}")
    else:
        path = registry.fixtures(args.name, args.root)
        print(f"{args.name} fixture written to {path}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dplib", description="Deep perceptual loss networks: benchmarks and grids")
    groups = parser.add_subparsers(dest="group", required=True)

    grid_parser = groups.add_parser("grid", help="run, inspect and collect a benchmark grid")
    grid_parser.add_argument("command", choices=["run", "status", "collect", "execute"])
    grid_parser.add_argument("target", help="params/bN.yaml (a run folder for `execute`)")
    grid_parser.add_argument("--smoke", action="store_true", help="the params file's smoke settings (CPU-sized)")
    grid_parser.add_argument("--only", help="filter runs, e.g. arch=vgg16|alexnet,point=late")
    grid_parser.add_argument("--workers", type=int, default=1, help="runs at once (local: processes; slurm: array)")
    grid_parser.add_argument("--executor", choices=["local", "slurm"], default="local")
    grid_parser.add_argument("--cluster", default="slurm",
                             help="submitit cluster for --executor slurm: slurm, or local to try the path here")
    grid_parser.add_argument("--retry-failed", action="store_true", help="rerun runs that failed before")
    grid_parser.add_argument("--runs-dir", help="where run folders go (default runs/, runs/smoke/ with --smoke)")
    grid_parser.add_argument("--out", help="collect: the CSV to write (default results/<name>.csv, name: the benchmark unless the params file names one)")
    grid_parser.add_argument("--timeout-run", type=float, metavar="SECONDS",
                             help="run: the limit per run (replaces the params file's timeouts.run_s)")
    grid_parser.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                             help="run: override a key of the params file's slurm block, e.g. --slurm gpus_per_node=0")
    grid_parser.add_argument("--grid", metavar="AXIS_FILE",
                             help="the file the params' `grid` axes come from (default: grid.yaml beside it; "
                                  "params/grid_extended.yaml: the networks beyond the paper's 14)")
    grid_parser.add_argument("--claim-token", help=argparse.SUPPRESS)  # execute: the runner's claim to join

    data_parser = groups.add_parser("data", help="download a dataset or write its tiny fixture")
    data_parser.add_argument("command", choices=["download", "fixtures"])
    data_parser.add_argument("name", help="bapps, superres, roads, svhn, stl10")
    data_parser.add_argument("--root", required=True, help="folder the dataset goes into")
    data_parser.add_argument("--all", action="store_true", help="download: optional parts too (e.g. BAPPS train)")

    args = parser.parse_args(argv)
    try:
        return _grid(args) if args.group == "grid" else _data(args)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as error:
        print(f"dplib: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
