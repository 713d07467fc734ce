"""`dplib benchmark check NAME`: does a benchmark keep the contract the grid and the analysis
rely on? Its record, files and code (dplib.benchmarks.check_record), then its smoke grid run
through the real runner and collected, and every row its runs wrote checked against the record
(check_rows: an unknown score, dataset or scale, a missing score). One line per problem."""

import sys
from pathlib import Path

from ..benchmarks import all_benchmarks, benchmark, check_record, check_rows
from . import grid, plan
from .check import write_missing_fixtures
from ..errors import InputError


def find(name):
    """The record called `name`, or a one-line error saying where benchmarks are looked for."""
    record = benchmark(name)
    if record is None:
        raise InputError(f"no benchmark called {name!r} (known: {', '.join(all_benchmarks())}); one in a folder of "
                         f"its own: --path FOLDER or DPLIB_BENCHMARKS=FOLDER")
    return record


def check_benchmark(name, runs_dir=None, workers=2, out=None):
    """(problems, summary): the contract checked, the smoke grid run in `runs_dir` (default
    runs/smoke/) and collected into `out` (default results/smoke/NAME.csv)."""
    record = find(name)
    problems = check_record(record)
    if problems:  # a broken record or notebook: no run is started
        return problems, f"{name}: {len(problems)} problem(s) in its record, notebook, params file or code; no run was started"
    params = record.path(record.params)
    spec = plan.load_spec(params, smoke=True)
    runs = plan.expand(spec, runs_dir=runs_dir)
    write_missing_fixtures(spec, runs)
    counts = grid.run_grid(params, smoke=True, workers=workers, runs_dir=runs_dir)
    not_done = {state: n for state, n in counts.items() if n and state != "completed"}
    if not_done:
        problems.append(f"the smoke grid did not complete: {', '.join(f'{n} {s}' for s, n in not_done.items())} "
                        f"(`dplib grid status {params} --smoke` shows why)")
    _, table = grid.collect(params, smoke=True, runs_dir=runs_dir, out=out)
    completed = table[table.state == "completed"].to_dict("records")
    problems += check_rows(record, completed)
    if problems:
        return problems, f"{name}: {len(problems)} problem(s) in its smoke runs or their rows"
    return problems, (f"{name}: record, notebook, params file and code keep the contract; {counts['completed']} "
                      f"smoke runs wrote {len(completed)} score rows, each one the record declares")


def main(args):
    from ..benchmarks import add_folder

    if args.path:
        add_folder(args.path)
    if args.verb == "list":
        for record in all_benchmarks().values():
            scores = ", ".join(f"{s.name} ({s.direction})" for s in record.scores)
            print(f"{record.name:<8} {record.title:<24} {record.path(record.notebook)}  scores: {scores}")
        return 0
    problems, summary = check_benchmark(args.name, runs_dir=Path(args.runs_dir) if args.runs_dir else None,
                                        workers=args.workers)
    for problem in problems:
        print(f"dplib benchmark check: {problem}", file=sys.stderr)
    print(summary)
    return 1 if problems else 0
