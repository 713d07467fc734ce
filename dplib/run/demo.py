"""`make demo`: every stage of the study once, on a fresh machine, with no download, in a few
minutes on 2 CPU cores.

The stages: the bundled fixture datasets are written; one small run of each benchmark and of
both companion papers goes through the real grid runner (`dplib grid run --smoke --only ...`:
the notebook, its run folder, claims, limits and record) and is collected; the analysis
notebooks run on the paper's own scores (-> figures/, figures/<companion>/) and on the demo's
(-> figures/demo/); the walkthrough runs offline. Independent stages run two at a time, each
in its own process with a time limit; each stage's time is printed and written, with its
outcome, to runs/demo/record.json. The full smoke grids run in the tests (`make test`).
"""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import plan
from ..atomic import write_json_atomic

# The demo's run of each grid: a selection of its smoke grid (`--only`). B1 scores all four
# points of a network in one run, so two cheap networks give its analysis two architectures.
DEMO_RUNS = {"b1": "arch=alexnet|squeezenet1_1",
             "b1_calibrated": "arch=squeezenet1_1",  # LPIPS's lin for its analysis's baseline-against-calibrated
             "b1_datasets": "arch=squeezenet1_1",    # B1 beyond BAPPS: the datasets' agreement table and figure
             "b2": "arch=squeezenet1_1,point=early",
             "b3": "arch=squeezenet1_1,point=early",
             "b4": "arch=squeezenet1_1,point=early",
             "b5": "arch=squeezenet1_1,point=early",
             "autoencoder_embeddings": "procedure=I-I-PS,variational=false,dataset=svhn",
             "feature_prediction": "procedure=I-F-FP,dataset=svhn"}
ANALYSIS_NOTEBOOKS = ("analysis_tables", "analysis_figures")
COMPANIONS = ("autoencoder_embeddings", "feature_prediction")
STAGE_LIMIT_S = 900  # each stage's time limit: a stage over it is killed and recorded, the demo goes on
WORKERS = 2
OUT = Path("runs") / "demo"


def _params(name):
    return Path("params") / f"{name}.yaml"


def _notebook(name, output, **parameters):
    """The command that executes notebooks/<name>.ipynb with papermill into runs/demo/."""
    command = [sys.executable, "-m", "papermill", f"notebooks/{name}.ipynb", str(OUT / output), "--no-progress-bar"]
    for key, value in parameters.items():
        command += ["-p", key, str(value)] if value is not None else ["-y", f"{key}: null"]
    return command


def stages():
    """[(stage name, command, names of the stages it waits for)] in the order they start."""
    grids = [(f"run {name}", [sys.executable, "-m", "dplib", "grid", "run", str(_params(name)), "--smoke",
                              "--only", only], ()) for name, only in DEMO_RUNS.items()]
    collects = [(f"collect {name}", [sys.executable, "-m", "dplib", "grid", "collect", str(_params(name)),
                                     "--smoke"], (f"run {name}",)) for name in DEMO_RUNS]
    on_paper = [(f"{name} on the paper's scores", _notebook(name, f"{name}_paper.ipynb", results="paper",
                                                            out_dir="figures"), ()) for name in ANALYSIS_NOTEBOOKS]
    on_paper += [(f"{name} on the paper's scores", _notebook(name, f"{name}_paper.ipynb", results="paper",
                                                             out_dir=f"figures/{name}"), ()) for name in COMPANIONS]
    benchmarks = tuple(f"collect {name}" for name in DEMO_RUNS if name not in COMPANIONS)
    on_demo = [(f"{name} on the demo's scores", _notebook(name, f"{name}_demo.ipynb", results="results/smoke",
                                                          out_dir="figures/demo"), benchmarks)
               for name in ANALYSIS_NOTEBOOKS]
    on_demo += [(f"{name} on the demo's scores", _notebook(name, f"{name}_demo.ipynb",
                                                           results=f"results/smoke/{name}.csv",
                                                           out_dir=f"figures/demo/{name}"), (f"collect {name}",))
                for name in COMPANIONS]
    walkthrough = [("walkthrough, offline", _notebook("walkthrough", "walkthrough.ipynb", weights=None), ())]
    # grids first (the longest), the paper's analysis fills the gaps, the demo's analysis last
    return grids + on_paper + walkthrough + collects + on_demo


def _run(name, command, log):
    began = time.time()
    try:
        with open(log, "w") as out:
            code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=STAGE_LIMIT_S).returncode
        outcome = "ok" if code == 0 else f"failed (exit {code})"
    except subprocess.TimeoutExpired:
        outcome = f"killed at its {STAGE_LIMIT_S} s limit"
    seconds = time.time() - began
    print(f"  {seconds:6.1f} s  {name}: {outcome}", flush=True)
    return {"stage": name, "seconds": round(seconds, 1), "outcome": outcome, "log": str(log)}


def _fixtures():
    """Write each grid's fixture dataset where its smoke block reads it, unless what the demo's
    runs read is there already (a fixture from an older dplib may lack a part: written again)."""
    from .check import write_missing_fixtures

    for name, only in DEMO_RUNS.items():
        spec = plan.load_spec(_params(name), smoke=True)
        write_missing_fixtures(spec, plan.expand(spec, only=plan.parse_only(only)))


def main(workers=WORKERS):
    start = time.time()
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    print(f"dplib demo: every stage once, {workers} at a time; each stage's log in {OUT / 'logs'}/", flush=True)
    _fixtures()
    records = [{"stage": "fixtures", "seconds": round(time.time() - start, 1), "outcome": "ok"}]
    print(f"  {records[0]['seconds']:6.1f} s  fixtures: ok", flush=True)
    plan_ = stages()
    futures = {}
    with ThreadPoolExecutor(workers) as pool:
        def submit(name, command, after):
            for dependency in after:  # wait for what it reads; a failed dependency still lets it report
                futures[dependency].result()
            log = OUT / "logs" / f"{name.replace(' ', '_').replace(',', '').replace(chr(39), '')}.log"
            return _run(name, command, log)

        # a stage waits inside its worker only after every stage it depends on was submitted before it
        for name, command, after in plan_:
            futures[name] = pool.submit(submit, name, command, after)
        records += [futures[name].result() for name, _, _ in plan_]
    minutes = round((time.time() - start) / 60, 2)  # the record's value is the printed one
    failed = [r["stage"] for r in records if r["outcome"] != "ok"]
    write_json_atomic(OUT / "record.json", {"minutes": minutes, "workers": workers, "stages": records,
                                     "failed": failed})
    print(f"""
Demo finished in {minutes:.1f} min ({OUT / 'record.json'} has each stage's time).
  run folders (executed notebooks, records):  runs/smoke/<grid>/<run_id>/
  collected demo results:                     results/smoke/<grid>.csv
  the paper's tables and figures, rebuilt:    figures/  (from the paper's printed scores)
  the same analysis on the demo's results:    figures/demo/
  executed analysis notebooks, walkthrough:   {OUT}/
The demo's scores come from RANDOMLY INITIALISED loss networks on tiny fixture data:
they exercise the pipeline and say nothing about the paper's findings. For real scores,
download the data and run a grid on a GPU (README, "A first real run").""")
    if failed:
        print(f"failed stages: {', '.join(failed)}; their logs are in {OUT / 'logs'}/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
