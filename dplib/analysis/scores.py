"""The scores the analysis reads: the paper's Tables I and V-XI as printed (shipped inside the
package, `dplib/analysis/paper/`), and a grid's collected results, both as tidy tables with
the columns of dplib.benchmarks.record.SCORE_COLUMNS."""

from pathlib import Path

import pandas as pd
from ..errors import InputError, MissingData

PAPER_DIR = Path(__file__).parent / "paper"  # package data: the paper's numbers as tidy CSV


def load_paper_scores():
    """The paper's Tables V-XI as one tidy DataFrame (dplib/analysis/paper/scores.csv)."""
    table = pd.read_csv(PAPER_DIR / "scores.csv", keep_default_na=False, na_values=[""])
    return _tidy(table)


def load_paper_architectures():
    """Table I as printed (dplib/analysis/paper/architectures.csv)."""
    return pd.read_csv(PAPER_DIR / "architectures.csv").set_index("arch")


def load_results(path, variant="baseline"):
    """A grid's collected results (a CSV written by `dplib grid collect`, or a folder of
    them: each benchmark's <name>.csv, b1.csv ... b5.csv and one's own; a CSV whose rows do not
    name the benchmark its file is named after, a companion grid's or b1_calibrated.csv, is read by its own
    analysis) in the columns of `load_paper_scores`, plus run_id and state. Rows of runs that
    did not complete are dropped here; read the CSV itself to see them.

    variant: Benchmark 1's metric whose rows are kept, "baseline" (the paper's, Eq. 1) or a
    calibrated one ("lin", "tune", "scratch": results/b1_calibrated.csv); None keeps every
    row. Rows without a variant (the other benchmarks) are always kept."""
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path] if path.is_file() else []
    tables = [(f, pd.read_csv(f, keep_default_na=False, na_values=[""])) for f in files]
    if path.is_dir():  # a benchmark's grid collects into <benchmark>.csv; other grids' CSVs are not read
        tables = [(f, t) for f, t in tables if "benchmark" in t and f.stem in set(t.benchmark.astype(str))]
    tables = [t for _, t in tables]
    if not tables:
        raise MissingData(f"no collected results at {path}; run `dplib grid collect PARAMS` first")
    table = pd.concat(tables, ignore_index=True)
    if "state" in table:
        table = table[table.state == "completed"]
    if variant is not None and "variant" in table:
        table = table[table.variant.isna() | (table.variant == variant)]
    return _tidy(table.dropna(subset=["value"]))


def _tidy(table):
    table = table.copy()
    table["scale"] = pd.to_numeric(table["scale"], errors="coerce").astype("Int64")
    for column in ("benchmark", "score", "dataset", "arch", "point", "note"):
        table[column] = table[column].astype(object).fillna("").astype(str)  # an all-empty column reads as float
    table["value"] = table["value"].astype(float)
    return table.reset_index(drop=True)


def read_collected(path, columns, name):
    """A collected grid CSV, refused in one line when it lacks the columns its params file collects."""
    table = pd.read_csv(path)
    missing = set(columns) - set(table)
    if missing:
        raise InputError(f"{path} lacks the columns {sorted(missing)}: collect it with params/{name}.yaml "
                         f"(`dplib grid collect params/{name}.yaml`)")
    return table
