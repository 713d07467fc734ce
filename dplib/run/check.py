"""Pre-flight: before a grid starts or submits anything, everything each run will need is
checked, so that no GPU-hour is spent on a run that stops at its first file.

For every run of the grid (`dplib grid check PARAMS`; `dplib grid run` does it first unless
--skip-check):
  - its data: present and complete for the parameters it uses (each benchmark's
    `data_needs`, checked by the dataset's `verify`: counts, pairs, sizes against the
    manifest; `dplib data verify` decodes every file and checks every checksum);
  - its loss network's weights: ImageNet weights in the torch cache, or a weights file;
  - free disk for its checkpoints and caches;
  - the device it asks for;
and the grid's device-hours where a device report (results/gpu/<device>.json, written by
`make gpu-check`) has measured its steps. What is missing is one table, each line with the
command that fixes it.
"""

import glob
import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..benchmarks import benchmark
from ..data import registry
from ..notebook import resolve
from .folder import RunFolder


@dataclass
class Problem:
    what: str       # one line: what is missing or wrong
    fix: str        # the command (or action) that fixes it


def _grid_options(spec, grid_file=None):
    options = [spec["path"]] + (["--smoke"] if spec["smoke"] else []) + (["--grid", str(grid_file)] if grid_file else [])
    return " ".join(shlex.quote(o) for o in options)


def data_needs(runs):
    """{(dataset, data root): needs} over `runs`, merged per dataset and root."""
    merged = {}
    for run in runs:
        bench = benchmark(run.benchmark)
        if bench is None or "data_root" not in run.parameters:
            continue
        roots = bench.data_roots(run.parameters)
        for dataset, needs in bench.data_needs(run.parameters).items():
            root = resolve(roots[dataset])
            merged[(dataset, root)] = registry.union([merged.get((dataset, root), {}), needs])
    return merged


def write_missing_fixtures(spec, runs):
    """Write the fixture of each dataset a smoke grid (one whose params file names a `fixture`)
    reads where its runs read it, unless what they read is there already; returns the roots written."""
    written = []
    if not spec.get("fixture"):
        return written
    for (dataset, root), needs in data_needs(runs).items():
        if not Path(root).exists() or registry.DATASETS[dataset].verify(root, needs):
            registry.DATASETS[dataset].fixture(root)  # each dataset's own, in its folder
            written.append(root)
    return written


def check_data(runs, spec, grid_file=None, full=False):
    problems = []
    for (dataset, root), needs in sorted(data_needs(runs).items(), key=lambda item: item[0]):
        found = registry.DATASETS[dataset].verify(root, needs, full=full)
        fix = (f"dplib data fixtures {dataset} --root {shlex.quote(root)}   (the smoke grid's tiny stand-in)"
               if spec["smoke"] else
               f"dplib data download {dataset} --for {_grid_options(spec, grid_file)} --root {shlex.quote(root)}")
        problems += [Problem(f"{dataset} in {root}: {problem}", fix) for problem in found]
    return problems




def imagenet_files(runs):
    """{(arch, weight name): (url, path in the torch cache)} of the torchvision weights the
    runs load: "imagenet" (IMAGENET1K_V1, the paper's) or another of the architecture's weight
    names (a pretraining axis); the paper's 14 and torchvision's other networks (timm fetches
    its own)."""
    import torch

    from ..lossnets import REGISTRY, imagenet_weights, weight_name

    files = {}
    for arch, weights in _networks(runs):
        if arch not in REGISTRY:
            continue
        name = weight_name(arch, weights)
        entry = imagenet_weights(arch, name) if name is not None and (arch, name) not in files else None
        if entry is not None:
            files[(arch, name)] = (entry.url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(entry.url))
    return files


def _networks(runs):
    """(arch, weights) of every network the runs load: each run's loss network and what its
    benchmark's `other_networks(parameters)` names (Benchmark 5's distance network)."""
    for run in runs:
        record = benchmark(run.benchmark)
        if record is None:
            continue
        if record.call("uses_loss_network", run.parameters):
            yield run.parameters.get("arch"), run.parameters.get("weights")
        yield from record.call("other_networks", run.parameters)


def check_weights(runs, spec=None, grid_file=None):
    """ImageNet weights in the torch cache (torchvision's file for the architecture), or the
    weights file a run names."""
    problems = []
    fix = f"dplib weights download --for {_grid_options(spec, grid_file)}" if spec else "dplib weights download"
    from ..lossnets import weight_name, weight_names

    for (arch, name), (url, path) in imagenet_files(runs).items():
        if not path.is_file():
            what = "ImageNet" if name == "IMAGENET1K_V1" else name
            problems.append(Problem(f"the {what} weights of {arch} are not in the torch cache: {path} ({url})",
                                    f"{fix}   (online; offline, put each file named above at its path)"))
    seen = set()
    for run in runs:
        arch, weights = run.parameters.get("arch"), run.parameters.get("weights")
        if (isinstance(weights, str) and (arch, weights) not in seen and weight_name(arch, weights) is None
                and not str(arch).startswith("timm:") and not Path(resolve(weights)).is_file()):
            seen.add((arch, weights))
            named = weight_names(arch)
            problems.append(Problem(f"the weights {weights!r} of {arch} are neither a file nor one of its torchvision "
                                    f"weight names ({', '.join(named) or 'none'})",
                                    "give weights: imagenet, null, a weight name of the architecture or the path of "
                                    "a saved state dict"))
    return problems


def check_disk(runs, root, workers=1):
    """Free disk at the runs folder for what the runs still to do keep (checkpoints, records)
    and for the caches of the `workers` largest running at once."""
    todo = [run for run in runs if RunFolder(run.directory).state() in ("pending", "interrupted")]
    kept, transient = 0, []
    for run in todo:
        record = benchmark(run.benchmark)
        run_kept, run_transient = record.call("disk_bytes", run.parameters) if record else (0, 0)
        kept, transient = kept + run_kept, transient + [run_transient]
    needed = kept + sum(sorted(transient, reverse=True)[:workers])
    existing = Path(root).resolve()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        return [Problem(f"the {len(todo)} runs to do need about {needed / 2**30:.1f} GB for checkpoints and caches, "
                        f"{free / 2**30:.1f} GB are free under {existing}",
                        "free disk space, or give --runs-dir on a larger disk")]
    return []


def check_device(runs, executor):
    """A run asking for CUDA on a local machine without it (on Slurm the node decides)."""
    if executor != "local":
        return []
    import torch

    wanted = {run.parameters.get("device") for run in runs}
    if "cuda" in wanted and not torch.cuda.is_available():
        return [Problem("runs ask for device cuda, and torch sees no CUDA GPU here",
                        "run on a GPU machine, --executor slurm, or set device: auto (CPU, slow)")]
    return []


def device_hours(runs, reports="results/gpu"):
    """{device: hours} of the runs still to do, for each device report that measured their
    benchmarks' steps (float32, the mean over the networks measured)."""
    estimates = {}
    for path in sorted(glob.glob(str(Path(reports) / "*.json"))):
        report = json.loads(Path(path).read_text())
        if report.get("smoke"):
            continue
        seconds = {}
        for row in report.get("steps", []):
            if row["precision"] == "float32":
                seconds.setdefault(row["benchmark"], []).append(row["seconds_per_step"])
        total, measured = 0.0, True
        for run in runs:
            record = benchmark(run.benchmark)
            key = record.call("step_key", run.parameters) if record else None
            if key not in seconds:
                measured = False
                break
            total += sum(seconds[key]) / len(seconds[key]) * record.call("steps", run.parameters)
        if measured:
            estimates[report["device"]] = total / 3600
    return estimates


def check(spec, runs, executor="local", runs_dir="runs", grid_file=None, workers=1):
    """([Problem], [note]) for the runs of a grid (see the module docstring)."""
    problems = check_data(runs, spec, grid_file) + check_weights(runs, spec, grid_file) + \
        check_disk(runs, runs_dir, workers) + \
        check_device(runs, executor)
    todo = [run for run in runs if RunFolder(run.directory).state() in ("pending", "interrupted")]
    hours = device_hours(todo)
    notes = [f"the {len(todo)} runs to do: about {h:,.1f} {device}-hours (results/gpu)" for device, h in hours.items()]
    if not hours and todo:
        notes.append(f"the {len(todo)} runs to do: no device report has measured their steps "
                     "(`make gpu-check` on the GPU you will use writes results/gpu/<device>.json)")
    return problems, notes


def report(problems, notes):
    """The check's outcome as text: one table of what is missing, each with its fix."""
    lines = list(notes)
    if problems:
        lines.append(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} before this grid can run:")
        fixes = {}
        for problem in problems:
            fixes.setdefault(problem.fix, []).append(problem.what)
        for fix, whats in fixes.items():
            lines += [f"  - {what}" for what in whats]
            lines.append(f"    fix: {fix}")
    else:
        lines.append("pre-flight: every run's data, weights, disk and device are in place")
    return "\n".join(lines)
