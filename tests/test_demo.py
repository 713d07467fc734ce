"""dplib.run.demo (`make demo`), run whole in a copy of the repository's notebooks and params:
every stage succeeds, each grid's demo run completes through the grid runner, and the
analysis writes the paper's items from the paper's scores and from the demo's.

The demo runs every grid and analysis notebook once, so the checks that need one of those runs
live here rather than in a second run of their own (moved from test_notebooks.py: the committed
tables and figures rebuilt from the paper's scores; from test_grid.py: each benchmark's
collected rows are the ones its record declares; from test_agreement.py: the B1-datasets grid
feeds the agreement table and figure)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dplib.analysis import agreement, tables
from dplib.analysis.scores import load_results
from dplib.benchmarks import benchmark, check_rows
from dplib.run import demo, plan

ROOT = Path(__file__).resolve().parents[1]
TABLE_FILES = sorted(p.name for p in (ROOT / "figures").glob("*") if p.suffix in (".csv", ".md", ".tex"))


@pytest.mark.long
@pytest.mark.timeout(1800)  # the whole demo: 2.5 minutes alone on 2 cores, longer beside the other tests
def test_the_demo_runs_every_stage_once(tmp_path):
    for folder in ("notebooks", "params"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    done = subprocess.run([sys.executable, "-m", "dplib.run.demo"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "demo" / "record.json").read_text())
    stages = {s["stage"]: s for s in record["stages"]}
    assert record["failed"] == [] and all(s["outcome"] == "ok" and s["seconds"] > 0 for s in stages.values())
    assert {f"run {name}" for name in demo.DEMO_RUNS} <= set(stages) and "walkthrough, offline" in stages
    assert f"Demo finished in {record['minutes']:.1f} min" in done.stdout
    for name, only in demo.DEMO_RUNS.items():  # the selection's runs completed, the rest not run
        collected = pd.read_csv(tmp_path / "results" / "smoke" / f"{name}.csv")
        completed = collected[collected["state"] == "completed"]
        spec = plan.load_spec(tmp_path / "params" / f"{name}.yaml", smoke=True)
        selected = plan.expand(spec, only=plan.parse_only(only), runs_dir=tmp_path / "runs" / "smoke" / name)
        assert len(selected) < len(plan.expand(spec, runs_dir=tmp_path))  # a part of the smoke grid
        assert set(completed["run_id"]) == {run.run_id for run in selected}, name
        assert completed["value"].notna().all(), name
        if name not in demo.COMPANIONS:  # every row a notebook wrote is one its benchmark's record declares
            assert check_rows(benchmark(spec["benchmark"]), completed.to_dict("records")) == [], name
        if name in ("b2", "b4"):
            loaded = load_results(tmp_path / "results" / "smoke" / f"{name}.csv")
        if name == "b2":  # both scales of the paper's axis, 3 test sets x 2 scores each
            assert sorted(loaded.scale.unique()) == [4, 8] and len(loaded) == 2 * 2 * 3
        if name == "b4":
            assert set(loaded.dataset) == {"svhn", "stl10"}
    # the paper's items from the paper's printed scores, and the same analysis on the demo's runs
    for folder in ("figures", "figures/demo"):
        assert (tmp_path / folder / "table_3.csv").is_file() and (tmp_path / folder / "fig_2.png").is_file()
    # from the paper's scores, every committed table exactly and every figure drawn
    assert len(TABLE_FILES) >= 3 * 13
    for name in TABLE_FILES:
        assert (tmp_path / "figures" / name).read_text() == (ROOT / "figures" / name).read_text(), name
    for n in (2, 3, 4, 5):
        assert (tmp_path / "figures" / f"fig_{n}.png").stat().st_size > 10_000
        assert (tmp_path / "figures" / f"fig_{n}.pdf").is_file() and (ROOT / "figures" / f"fig_{n}.png").is_file()
    # beyond the paper: Benchmark 1 calibrated ("lin") beside its baseline, per network and point
    calibrated = pd.read_csv(tmp_path / "figures" / "demo" / "b1_calibrated.csv", header=[0, 1], index_col=[0, 1])
    assert len(calibrated) == 2 and (tmp_path / "figures" / "demo" / "fig_calibrated.png").stat().st_size > 10_000
    assert not (tmp_path / "figures" / "b1_calibrated.csv").exists()  # the paper has no calibrated scores
    # beyond the paper: Benchmark 1 on every human-judgement dataset, and their agreement (none on the paper's)
    pairs = pd.read_csv(tmp_path / "figures" / "demo" / "datasets_agreement.csv")
    assert len(pairs) == 10 and (pairs.n == 4).all()  # 5 datasets in pairs, squeezenet1_1's 4 points
    assert (tmp_path / "figures" / "demo" / "fig_datasets.png").stat().st_size > 10_000
    headlines = agreement.dataset_table(tables.load_beyond_bapps(tmp_path / "results" / "smoke"))
    assert set(headlines.columns) == set(agreement.HEADLINES)
    assert not (tmp_path / "figures" / "datasets_agreement.csv").exists()
    for name in demo.COMPANIONS:
        assert any((tmp_path / "figures" / name).iterdir()) and any((tmp_path / "figures" / "demo" / name).iterdir())
