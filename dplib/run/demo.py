"""`make demo`: the whole pipeline on a fresh machine, with no download, in minutes on a CPU.

Writes the bundled fixture datasets, runs the smoke grid of every benchmark that has a
params file and of companion papers 003 and 004 (SVHN only; random weights, tiny data), collects the results,
runs the analysis notebooks on the paper's scores (-> figures/) and on the demo's (->
figures/demo/), the companion notebook likewise, and the walkthrough offline (random weights).
"""

import sys
import time
from pathlib import Path

import papermill

from . import grid, plan
from .execute import KERNEL_START_TIMEOUT
from ..data import registry

ANALYSIS_NOTEBOOKS = ("analysis_tables", "analysis_figures")
# companion grids in the demo, each with the part it runs (the tests run the whole smoke grid;
# the demo runs SVHN only to stay within its 10 minutes on 2 cores)
COMPANION_GRIDS = {"autoencoder_embeddings": {"dataset": ["svhn"]}, "feature_prediction": {"dataset": ["svhn"]}}


def _fixtures(spec):
    root = Path(spec["parameters"]["data_root"])
    if not root.exists():
        name = spec.get("fixture", "bapps")
        print(f"writing the {name} fixture to {root}")
        registry.fixtures(name, root)


def _analysis(results, out_dir, executed_dir, notebooks=ANALYSIS_NOTEBOOKS):
    for name in notebooks:
        print(f"  {name}: results={results} -> {out_dir}", flush=True)
        papermill.execute_notebook(f"notebooks/{name}.ipynb", str(executed_dir / f"{name}_{Path(out_dir).name}.ipynb"),
                                   parameters=dict(results=str(results), out_dir=str(out_dir)), progress_bar=False,
                                   start_timeout=KERNEL_START_TIMEOUT, execution_timeout=1800)


def main(workers=2):
    start = time.time()
    params = sorted(Path("params").glob("b[1-4].yaml")) + [Path("params") / f"{n}.yaml" for n in COMPANION_GRIDS]
    failed = []
    for path in params:
        began = time.time()
        spec = plan.load_spec(path, smoke=True)
        _fixtures(spec)
        counts = grid.run_grid(path, smoke=True, workers=workers, only=COMPANION_GRIDS.get(spec["name"]))
        out, _ = grid.collect(path, smoke=True)
        print(f"{spec['name']}: {counts['completed']} runs completed in {time.time() - began:.0f} s -> {out}",
              flush=True)
        if counts["failed"]:
            failed.append(spec["name"])
    executed = Path("runs") / "analysis"
    executed.mkdir(parents=True, exist_ok=True)
    print("analysis notebooks:")
    _analysis("paper", "figures", executed)
    _analysis("results/smoke", "figures/demo", executed)
    for name in COMPANION_GRIDS:
        _analysis("paper", f"figures/{name}", executed, notebooks=(name,))
        _analysis(f"results/smoke/{name}.csv", f"figures/demo/{name}", executed, notebooks=(name,))
    print("  walkthrough, offline (random weights) -> runs/walkthrough", flush=True)
    papermill.execute_notebook("notebooks/walkthrough.ipynb", str(executed / "walkthrough.ipynb"),
                               parameters=dict(weights=None), progress_bar=False,
                               start_timeout=KERNEL_START_TIMEOUT, execution_timeout=1800)
    minutes = (time.time() - start) / 60
    print(f"""
Demo finished in {minutes:.1f} min.
  run folders (executed notebooks, records):  runs/smoke/<benchmark or companion>/<run_id>/
  collected demo results:                     results/smoke/<benchmark or companion>.csv
  the paper's tables and figures, rebuilt:    figures/  (from results/paper/)
  the same analysis on the demo's results:    figures/demo/
  executed analysis notebooks, walkthrough:   runs/analysis/
Grids in this demo: {', '.join(plan.load_spec(p)['name'] for p in params)}.
The demo's scores come from RANDOMLY INITIALISED loss networks on tiny fixture data:
they exercise the pipeline and say nothing about the paper's findings. For real scores,
download the data (dplib data download ...) and run `dplib grid run params/bN.yaml` on a GPU.""")
    if failed:
        print(f"smoke runs failed in: {', '.join(failed)}; `dplib grid status params/<name>.yaml --smoke` shows why",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
