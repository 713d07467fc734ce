"""The `dplib` command (also `python -m dplib`):

    dplib grid run|check|status|collect PARAMS     a benchmark's grid (dplib.run.grid, .check)
    dplib data download|verify|fixtures NAME       a dataset (dplib.data), for what a grid reads
    dplib weights download --for PARAMS           the ImageNet weights a grid's runs load
    dplib calibrate ARCH --points ... --bapps DIR --out FILE   a calibrated metric (dplib.calibration)
    dplib similarity A B [--arch ... | --calibration FILE | --lpips alex]   distances of two images or folders
    dplib new-benchmark NAME [--dir FOLDER]        a working benchmark of one's own (dplib.benchmarks.template)
    dplib benchmark check NAME | list              a benchmark against the contract (dplib.run.contract)

Each verb takes only its own flags (`dplib grid status --help`). A mistake of the user's (a
params file, a flag, a missing dataset: dplib.errors.UserError) is one line and exit status 2;
anything else is a bug, shown with its traceback and exit status 3.
"""

import argparse
import errno
import sys
import traceback
from pathlib import Path

from ..calibration import CLAMP_SCOPES, CLAMPS, FORWARD_PASSES, RECIPES, TRUNK_MODES, VARIANTS
from ..similarity import LPIPS_NETWORKS
from ..errors import InputError, MissingData, UserError
from ..extras import explain

# errors of the machine a user fixes (a full disk, a quota, a path that is not writable)
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS}


def _grid(args):
    from . import check, grid, plan

    if args.verb == "check":
        from .executors import executor

        executor(args.executor)  # an unknown one is refused before anything else
        spec = plan.load_spec(args.target, smoke=args.smoke, timeout_run=args.timeout_run,
                              slurm_overrides=plan.parse_assignments(args.slurm), grid_file=args.grid)
        runs = plan.expand(spec, only=plan.parse_only(args.only), runs_dir=args.runs_dir)
        problems, notes = check.check(spec, runs, args.executor, plan.runs_root(spec, args.runs_dir), args.grid,
                                      args.workers)
        print(check.report(problems, notes), file=sys.stderr if problems else sys.stdout)
        return 1 if problems else 0
    if args.verb == "run":
        grid.install_signal_handlers()
        try:
            counts = grid.run_grid(args.target, smoke=args.smoke, only=plan.parse_only(args.only), workers=args.workers,
                                   executor=args.executor, retry_failed=args.retry_failed, runs_dir=args.runs_dir,
                                   cluster=args.cluster, timeout_run=args.timeout_run,
                                   slurm_overrides=plan.parse_assignments(args.slurm), grid_file=args.grid,
                                   preflight=not args.skip_check)
        except grid.PreflightError as error:  # a table of what is missing, each with its fix
            print(error, file=sys.stderr)
            return 1
        print("summary: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n))
        if counts["running"] or counts["queued"]:
            print(f"{counts['running'] + counts['queued']} run(s) are held by another runner or a queued Slurm job; "
                  "`dplib grid status` shows where")
        if counts["failed"]:
            print(f"{counts['failed']} run(s) failed: `dplib grid status {args.target}"
                  f"{' --smoke' if args.smoke else ''}` shows why; --retry-failed reruns them", file=sys.stderr)
        return 1 if counts["failed"] or counts["interrupted"] or counts["pending"] else 0
    if args.verb == "status":
        from tabulate import tabulate

        table = grid.status_table(args.target, smoke=args.smoke, runs_dir=args.runs_dir, grid_file=args.grid)
        print(tabulate(table, headers="keys", showindex=False))
        print("\n" + ", ".join(f"{n} {s}" for s, n in table.state.value_counts().items()))
        return 0
    if args.verb == "collect":
        if args.curves:
            out, table = grid.collect_curves(args.target, smoke=args.smoke, runs_dir=args.runs_dir, out=args.out,
                                             grid_file=args.grid)
            print(f"{len(table)} logged intervals from {table.run_id.nunique()} runs -> {out}")
            return 0
        out, table = grid.collect(args.target, smoke=args.smoke, runs_dir=args.runs_dir, out=args.out,
                                  grid_file=args.grid)
        print(f"{len(table)} rows from {table.run_id.nunique()} runs -> {out}")
        return 0
    raise AssertionError(args.verb)


def data_plan(name, params=None, smoke=False, grid_file=None, root=None, include_optional=False):
    """{dataset: (root, needs)} that `dplib data download|verify NAME` works on: what the runs of
    the grid `params` read (without it, a run of the benchmark notebook's defaults), for the
    datasets NAME stands for. The root is `root`, else the runs' data_root."""
    from ..benchmarks import benchmark
    from ..data import registry
    from ..notebook import resolve
    from . import plan

    datasets = registry.names(name)
    if params:
        spec = plan.load_spec(params, smoke=smoke, grid_file=grid_file)
        runs = [(run.benchmark, run.parameters) for run in plan.expand(spec)]
    else:
        bench = benchmark(registry.DATASETS[datasets[0]].benchmark)
        notebook = Path(resolve(bench.notebook))
        if not notebook.is_file():
            raise MissingData(f"{notebook} not found: run this in the repository, or give --for PARAMS")
        runs = [(bench.name, plan.notebook_defaults(notebook))]
    found = {}
    for benchmark_name, parameters in runs:
        bench = benchmark(benchmark_name)
        if bench is None:
            continue
        roots = bench.data_roots(parameters)
        for dataset, needs in bench.data_needs(parameters).items():
            if dataset in datasets:
                folder = resolve(root or roots[dataset])
                found.setdefault(dataset, {}).setdefault(folder, []).append(needs)
    if not found:
        raise InputError(f"no run of {params or 'the notebook defaults'} reads {name}")
    result = {}
    for dataset, roots in found.items():
        if len(roots) > 1:
            raise InputError(f"the runs read {dataset} from several folders ({', '.join(sorted(roots))}); give --root")
        [(folder, needs)] = roots.items()
        extra = registry.DATASETS[dataset].extra if include_optional else None
        result[dataset] = (folder, registry.union(needs + ([extra] if extra else [])))
    return result


def _weights(args):
    """`dplib weights download`: the torchvision weights a grid's runs load (ImageNet's, or the
    pretrainings a pretraining axis names), into the torch cache."""
    from ..architectures import _torchvision_state_dict
    from . import check, plan

    spec = plan.load_spec(args.params, smoke=args.smoke, grid_file=args.grid)
    for (arch, name), (url, path) in check.imagenet_files(plan.expand(spec)).items():
        if not path.is_file():
            _torchvision_state_dict(arch, name)  # torchvision's download, hash checked, into the cache
        print(f"{arch} {name}: {path}")
    return 0


def _data(args):
    from ..data import registry

    if args.verb == "fixtures":
        print(f"{args.name} fixture written to {registry.fixtures(args.name, args.root)}")
        return 0
    datasets = data_plan(args.name, args.params, args.smoke, args.grid, args.root, include_optional=getattr(args, "all", False))
    status = 0
    for dataset, (root, needs) in datasets.items():
        entry = registry.DATASETS[dataset]
        if args.verb == "download":
            entry.download(root, needs)
            print(f"{dataset} is complete in {root}")
        else:
            problems = entry.verify(root, needs, full=not getattr(args, "quick", False))
            if problems:
                status = 1
                print(f"{dataset} in {root}: {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n  "
                      + "\n  ".join(problems) + f"\n  fix: dplib data download {args.name}"
                      + (f" --for {args.params}{' --smoke' if args.smoke else ''}" if args.params else "")
                      + f" --root {root}", file=sys.stderr)
            else:
                print(f"{dataset} in {root}: complete ({'counts and sizes' if getattr(args, 'quick', False) else 'every file read'})")
    return status


def _calibrate(args):
    """`dplib calibrate ARCH --points ... --bapps DIR --out FILE`: train, score the validation
    sets found beside the training set, write the file."""
    from ..calibration import calibrate, score
    from ..device import resolve_device
    from ..similarity import save_calibration

    options = {k: v for k, v in dict(variant=args.variant, recipe=args.recipe, clamp=args.clamp,
                                     clamp_scope=args.clamp_scope, trunk_mode=args.trunk_mode,
                                     lin_trunk_mode=args.lin_trunk_mode, forward_passes=args.forward_passes,
                                     seed=args.seed, limit=args.limit,
                                     epochs=args.epochs).items() if v is not None}
    if args.weights is not None:
        options["weights"] = None if args.weights.lower() == "none" else args.weights
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    metric, provenance = calibrate(args.arch, args.points, args.bapps, lin_cache=args.lin_cache, device=device, **options)
    scores = score(metric, args.bapps, device=device, limit=args.limit)
    save_calibration(out, metric, **provenance, scores=scores)
    summary = ", ".join(f"{name} {values['all']:.4f}" for name, values in scores.items()) or "no val sets found"
    print(f"{args.arch} {'/'.join(metric.points)} {metric.variant}: {summary} -> {out}")
    return 0


def _similarity(args):
    """`dplib similarity A B`: the distance between two images, or between the same-named images
    of two folders, as CSV (name, distance)."""
    import csv

    from ..device import resolve_device
    from ..similarity import PerceptualSimilarity, distances, image_pairs

    pairs = image_pairs(args.first, args.second)  # mismatched folders stop here, before any network is built
    if args.lpips:
        if args.calibration or args.arch or args.points:
            raise InputError("--lpips is the lpips package's metric: give it alone, without --arch, --points or "
                             "--calibration")
        metric = PerceptualSimilarity.from_lpips(args.lpips, args.lpips_version, weights=_weights_option(args))
    else:
        metric = PerceptualSimilarity(args.arch or "alexnet", tuple(args.points or ("early", "semi_early", "mid",
                                                                                     "late")),
                                      calibration=args.calibration, weights=_weights_option(args))
    rows = distances(metric, pairs, resolve_device(args.device), progress=not args.quiet)
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["name", "distance"])
        writer.writerows((name, f"{value:.8g}") for name, value in rows)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"{len(rows)} distances ({metric.arch} {'/'.join(metric.points)}, {metric.variant}) -> {args.out}",
              file=sys.stderr)
    return 0


def _weights_option(args):
    return None if (args.weights or "").lower() == "none" else (args.weights or "imagenet")


def _new_benchmark(args):
    from ..benchmarks.template import new_benchmark

    folder = new_benchmark(args.name, args.dir, args.title)
    print(f"{args.name}: written to {folder}/ ({args.name}.py, {args.name}.ipynb, {args.name}.yaml, "
          f"test_{args.name}.py)\n  check it:      dplib benchmark check {args.name} --path {folder}\n"
          f"  run its grid:  dplib grid run {folder / (args.name + '.yaml')}")
    return 0


def _benchmark(args):
    from .contract import main as contract_main

    return contract_main(args)


def _verb(group, name, help, target=None, target_help=None):
    """A sub-command with its own flags (argparse refuses any other)."""
    parser = group.add_parser(name, help=help, description=help)
    parser.set_defaults(verb_parser=parser)
    if target:
        parser.add_argument(target, help=target_help)
    return parser


def _grid_options(parser, *names):
    """The grid flags a verb takes, one definition each."""
    options = {
        "smoke": lambda: parser.add_argument("--smoke", action="store_true",
                                             help="the params file's smoke settings (CPU-sized)"),
        "grid": lambda: parser.add_argument("--grid", metavar="AXIS_FILE",
                                            help="the file the params' `grid` axes come from (default: grid.yaml beside "
                                                 "it; params/grid_extended.yaml: the networks beyond the paper's 14)"),
        "runs_dir": lambda: parser.add_argument("--runs-dir", help="where run folders go (default runs/, runs/smoke/ "
                                                                   "with --smoke)"),
        "only": lambda: parser.add_argument("--only", help="filter runs, e.g. arch=vgg16|alexnet,point=late"),
        "workers": lambda: parser.add_argument("--workers", type=_positive_int, default=1,
                                               help="runs at once (local: processes; slurm: array)"),
        "executor": lambda: parser.add_argument("--executor", default="local",
                                                help="local, slurm, or one registered (dplib.run.executors)"),
        "timeout_run": lambda: parser.add_argument("--timeout-run", type=float, metavar="SECONDS",
                                                   help="the limit per run (replaces the params file's timeouts.run_s)"),
        "slurm": lambda: parser.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                                             help="override a key of the params file's slurm block, e.g. --slurm "
                                                  "gpus_per_node=0"),
    }
    for name in names:
        options[name]()
    return parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser():
    """The `dplib` command line: groups, their verbs, and for each verb only the flags it uses."""
    parser = argparse.ArgumentParser(prog="dplib", description="Deep perceptual loss networks: benchmarks and grids")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{grid,data,weights,calibrate,"
                                   "similarity,new-benchmark,benchmark}")
    for add in (_grid_parser, _data_parser, _weights_parser, _calibrate_parser, _similarity_parser,
                _benchmark_parsers):
        add(groups)
    return parser


def _grid_parser(groups):
    grid = groups.add_parser("grid", help="check, run, inspect and collect a benchmark grid").add_subparsers(
        dest="verb", required=True, metavar="{run,check,status,collect}")  # and `execute`, internal
    target = ("target", "params/bN.yaml")
    run = _grid_options(_verb(grid, "run", "run every run of the grid not yet done (resumes)", *target),
                        "smoke", "grid", "runs_dir", "only", "workers", "executor", "timeout_run", "slurm")
    run.add_argument("--cluster", default="slurm",
                     help="submitit cluster for --executor slurm: slurm, or local to try the path here")
    run.add_argument("--retry-failed", action="store_true", help="rerun runs that failed before")
    run.add_argument("--skip-check", action="store_true",
                     help="start without the pre-flight check of data, weights, disk and device")
    _grid_options(_verb(grid, "check", "pre-flight: the params file, every run's values, data, weights, disk, device",
                        *target), "smoke", "grid", "runs_dir", "only", "workers", "executor", "timeout_run", "slurm")
    _grid_options(_verb(grid, "status", "each run's state, attempts, time, progress and error", *target),
                  "smoke", "grid", "runs_dir")
    collect = _grid_options(_verb(grid, "collect", "gather the runs' scores into one tidy CSV", *target),
                            "smoke", "grid", "runs_dir")
    collect.add_argument("--out", help="the CSV to write (default results/<name>.csv, name: the benchmark unless "
                                       "the params file names one; with --curves results/<name>_curves.csv)")
    collect.add_argument("--curves", action="store_true",
                         help="the training curves instead: every run's metrics.jsonl as one tidy CSV")


def _data_parser(groups):
    data = groups.add_parser("data", help="download or verify what a grid reads, or write a tiny fixture"
                             ).add_subparsers(dest="verb", required=True)
    name = ("name", "bapps, superres, roads, svhn, stl10, embeddings (svhn and stl10), kadid10k, tid2013, pipal or "
                    "nights")
    for verb, help in (("download", "download what the runs read, checksums verified"),
                       ("verify", "check what is on disk against the manifest")):
        command = _verb(data, verb, help, *name)
        command.add_argument("--root", help="the dataset's folder (default: the data_root of the runs)")
        command.add_argument("--for", dest="params", metavar="PARAMS",
                             help="what every run of this grid reads (default: a run of the notebook's defaults)")
        command.add_argument("--smoke", action="store_true", help="with --for: the params file's smoke grid")
        command.add_argument("--grid", metavar="AXIS_FILE", help="with --for: the file of its `grid` axes")
        if verb == "download":
            command.add_argument("--all", action="store_true", help="optional parts too (BAPPS 2AFC train)")
        else:
            command.add_argument("--quick", action="store_true",
                                 help="counts and sizes only (what `dplib grid check` does), no file read")
    fixtures = _verb(data, "fixtures", "write a dataset's tiny fixture, in its real format", *name)
    fixtures.add_argument("--root", required=True, help="the folder to write it into")


def _weights_parser(groups):
    weights = groups.add_parser("weights", help="download the ImageNet weights a grid's runs load"
                                ).add_subparsers(dest="verb", required=True)
    download = _verb(weights, "download", "the torchvision weights every run of a grid loads, into the torch cache")
    download.add_argument("--for", dest="params", metavar="PARAMS", required=True, help="the grid's params file")
    download.add_argument("--smoke", action="store_true", help="its smoke grid")
    download.add_argument("--grid", metavar="AXIS_FILE", help="the file of its `grid` axes")


def _calibrate_parser(groups):
    calibrate = groups.add_parser(
        "calibrate", help="a calibrated perceptual similarity (LPIPS's lin, tune or scratch) from any loss network")
    calibrate.set_defaults(verb_parser=calibrate)
    calibrate.add_argument("arch", help="a registered network (dplib.REGISTRY) or timm:<model>")
    calibrate.add_argument("--points", nargs="+", required=True, help="its points, one metric over them all")
    calibrate.add_argument("--bapps", required=True, metavar="DIR",
                           help="a BAPPS root holding 2afc/train (dplib data download bapps --all); its val sets, "
                                "when there, are scored")
    calibrate.add_argument("--out", required=True, metavar="FILE", help="the calibration file to write")
    calibrate.add_argument("--variant", choices=VARIANTS[1:], help="default: lin")
    calibrate.add_argument("--recipe", choices=sorted(RECIPES), help="default: released")
    calibrate.add_argument("--lin-cache", action="store_true", help="lin on cached channel means (one pass)")
    calibrate.add_argument("--clamp", choices=CLAMPS, help="default: after_step")
    calibrate.add_argument("--clamp-scope", choices=CLAMP_SCOPES, help="default: channel_weights")
    calibrate.add_argument("--trunk-mode", choices=TRUNK_MODES, help="tune/scratch; default: train")
    calibrate.add_argument("--lin-trunk-mode", choices=TRUNK_MODES, help="lin; default: eval")
    calibrate.add_argument("--forward-passes", choices=FORWARD_PASSES, help="default: separate")
    calibrate.add_argument("--weights", help="imagenet (default), none (random, seeded) or a state-dict path")
    calibrate.add_argument("--device", default="auto", help="auto (cuda when there is one), cuda or cpu")
    calibrate.add_argument("--seed", type=int, help="default: 0")
    calibrate.add_argument("--limit", type=_positive_int, help="the first N triplets of each subset (a quick try)")
    calibrate.add_argument("--epochs", type=_positive_int, help="the recipe's first N epochs only (a quick try)")


def _similarity_parser(groups):
    similarity = groups.add_parser(
        "similarity", help="the perceptual distance between two images, or same-named images of two folders (CSV)")
    similarity.set_defaults(verb_parser=similarity)
    similarity.add_argument("first", help="an image, or a folder of images")
    similarity.add_argument("second", help="an image, or a folder of images with the same names")
    similarity.add_argument("--arch", help="a registered network or timm:<model> (default: alexnet)")
    similarity.add_argument("--points", nargs="+", help="its points (default: early semi_early mid late)")
    similarity.add_argument("--calibration", metavar="FILE", help="a calibration file (dplib calibrate) for them")
    similarity.add_argument("--lpips", choices=sorted(LPIPS_NETWORKS), help="the lpips package's own metric instead")
    similarity.add_argument("--lpips-version", default="0.1", choices=["0.1", "0.0"], help="with --lpips")
    similarity.add_argument("--weights", help="imagenet (default), none (random, seeded) or a state-dict path")
    similarity.add_argument("--device", default="auto", help="auto (cuda when there is one), cuda or cpu")
    similarity.add_argument("--out", metavar="CSV", help="the CSV to write (default: standard output)")
    similarity.add_argument("--quiet", action="store_true", help="no progress bar")


def _benchmark_parsers(groups):
    new = groups.add_parser("new-benchmark", help="write a working benchmark of your own from the template")
    new.set_defaults(verb_parser=new)
    new.add_argument("name", help="its name: lower-case letters, digits and _ (its module's name)")
    new.add_argument("--dir", default="benchmarks", help="the folder it goes into, as DIR/NAME/ (default: benchmarks)")
    new.add_argument("--title", help="what it is, for its notebook and record (default: 'Benchmark NAME')")
    bench = groups.add_parser("benchmark", help="check a benchmark against the contract, or list them"
                              ).add_subparsers(dest="verb", required=True)
    path_help = "a folder holding benchmarks of one's own (as DPLIB_BENCHMARKS)"
    check = _verb(bench, "check", "run a benchmark's smoke grid and check its record, files and rows",
                  "name", "the benchmark's name")
    check.add_argument("--path", metavar="FOLDER", help=path_help)
    check.add_argument("--runs-dir", help="where the smoke runs go (default runs/smoke/)")
    check.add_argument("--workers", type=_positive_int, default=2, help="smoke runs at once")
    _verb(bench, "list", "every benchmark known here").add_argument("--path", metavar="FOLDER", help=path_help)


BUG = ("dplib: internal error (a bug in dplib, not a mistake in what you typed): the traceback is above; "
       "please report it with the command you ran")


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # a flag of another verb: refused by the verb's own parser, which lists what it takes
        getattr(args, "verb_parser", parser).error(f"unrecognized arguments: {' '.join(extra)} (this command's flags: "
                                                  f"`--help`)")
    handlers = {"grid": _grid, "data": _data, "weights": _weights, "calibrate": _calibrate,
                "similarity": _similarity, "new-benchmark": _new_benchmark, "benchmark": _benchmark}
    try:
        return handlers[args.group](args)
    except UserError as error:  # what the user can fix: one line
        print(f"dplib: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        missing = explain(error, f"dplib {args.group}")
        if missing is None:  # not an extra's package: a bug
            traceback.print_exc()
            print(BUG, file=sys.stderr)
            return 3
        print(f"dplib: error: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dplib: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        if error.errno in ENVIRONMENT_ERRNOS or isinstance(error, PermissionError):
            print(f"dplib: error: {error}", file=sys.stderr)  # the machine's, not dplib's: a full disk, no access
            return 2
        traceback.print_exc()
        print(BUG, file=sys.stderr)
        return 3
    except Exception:  # a bug: its traceback, and a line saying so
        traceback.print_exc()
        print(BUG, file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
