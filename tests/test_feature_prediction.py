"""dplib.analysis.feature_prediction: 004's Table II, the data of its Figures 7-8 and its
relative training time, rebuilt from a collected grid; checked on hand-made runs with
hand-computed values, and its smoke grid through the runner and the notebook."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dplib.analysis import feature_prediction

from conftest import write_collected

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(benchmark="b4", dataset="svhn", scale="", arch="alexnet", point="semi_early", note="", state="completed")


def collected(tmp_path):
    """A collected feature_prediction CSV: two procedures, two z, two repeats, on SVHN."""
    rows = []
    accuracies = {("I-I-PS", 64): (0.80, 0.84), ("I-I-PS", 128): (0.86, 0.88),
                  ("I-F-FP", 64): (0.85, 0.85), ("I-F-FP", 128): (0.70, 0.90)}
    seconds = {"I-I-PS": (100.0, 120.0), "I-F-FP": (55.0, 66.0)}  # per run, 10 epochs
    for (procedure, z), values in accuracies.items():
        for repeat, value in enumerate(values):
            rows.append(dict(RUN, score="accuracy", value=value, procedure=procedure, z=z, repeat=repeat,
                             ae_epochs=10, ae_seconds=seconds[procedure][repeat], run_id=f"{procedure}{z}{repeat}"))
    return write_collected(tmp_path, "feature_prediction", rows)


def test_table_2_takes_each_procedures_best_z_with_the_uncorrected_spread(tmp_path):
    runs = feature_prediction.load_runs(collected(tmp_path))
    assert len(runs) == 8  # the failed run is not a result
    table = feature_prediction.table_2(runs).set_index("procedure")
    # I-I-PS: z = 128 (mean 0.87 over 0.82); spread sqrt(((0.86-0.87)^2 + (0.88-0.87)^2) / 2) = 0.01
    assert table.loc["I-I-PS", "z"] == 128
    assert table.loc["I-I-PS", "accuracy"] == pytest.approx(0.87)
    assert table.loc["I-I-PS", "accuracy_spread"] == pytest.approx(0.01)
    # I-F-FP: equal means 0.85 and 0.80 -> z = 64, spread 0
    assert table.loc["I-F-FP", "z"] == 64 and table.loc["I-F-FP", "accuracy_spread"] == pytest.approx(0.0)
    # the printed Table II next to it (0.87 and 0.86 on SVHN)
    assert table.loc["I-I-PS", "printed"] == 0.87 and table.loc["I-F-FP", "printed"] == 0.86


def test_relative_time_per_epoch_and_the_texts_statement(tmp_path):
    runs = feature_prediction.load_runs(collected(tmp_path))
    ratio = feature_prediction.relative_time(runs).set_index("dataset")
    # I-F-FP 6.05 s per epoch (5.5 and 6.6), I-I-PS 11 s (10 and 12): 0.55, what 004 states for SVHN
    assert ratio.loc["svhn", "measured"] == pytest.approx(6.05 / 11.0)
    assert ratio.loc["svhn", "stated"] == 0.55
    only_one = feature_prediction.relative_time(runs[runs.procedure == "I-I-PS"])
    assert only_one.measured.isna().all()  # I-F-FP not run: no ratio, no error


def test_figure_8_plots_each_procedure_and_z_at_its_mean_time_and_accuracy(tmp_path):
    runs = feature_prediction.load_runs(collected(tmp_path))
    figure = feature_prediction.fig_7_8(runs, "svhn")
    points = np.concatenate([c.get_offsets() for c in figure.axes[0].collections if len(c.get_offsets())
                             and c.get_offsets().shape[1] == 2 and type(c).__name__ == "PathCollection"])
    expected = {(11.0, 0.82), (11.0, 0.87), (6.05, 0.85), (6.05, 0.80)}
    assert {(round(x, 4), round(y, 4)) for x, y in points} == expected
    assert "Fig. 8" in figure.axes[0].get_title()


@pytest.mark.long
def test_the_feature_prediction_smoke_grid_runs_collects_and_rebuilds_its_table_and_figures(tmp_path, smoke_params):
    """params/feature_prediction.yaml at smoke size (the six procedures on SVHN, one z, one
    repeat) through the grid runner, collected with its extra columns, then its notebook. STL-10
    goes through the same notebook (b4_autoencoding) in the demo's B4 runs (test_demo.py) and in
    tests/test_notebooks.py (STL-10 autoencoders, VAE and I-F-FP); both datasets' printed items:
    the last test here."""
    import json
    import subprocess
    import sys

    import papermill

    from dplib.run import grid
    from dplib.data import embeddings

    root = embeddings.write_fixture(embeddings.write_fixture(tmp_path / "emb", "svhn"), "stl10")
    path = smoke_params("feature_prediction", root, {"embedding_size": [16], "seed": [0], "dataset": ["svhn"]},
                        mlp_epochs=2)
    done = subprocess.run([sys.executable, "-m", "dplib", "grid", "run", str(path), "--smoke", "--workers", "2",
                           "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(list((tmp_path / "runs" / "feature_prediction").iterdir())) == 6  # its own runs folder
    out, table = grid.collect(path, smoke=True, runs_dir=tmp_path / "runs", out=tmp_path / "feature_prediction.csv")
    assert set(table.state) == {"completed"} and len(table) == 6
    assert set(table.procedure) == set(feature_prediction.PROCEDURES) and set(table.z) == {16}
    record = json.loads(next((tmp_path / "runs" / "feature_prediction").glob("*/result.json")).read_text())
    assert record["params"]["svhn_padding"] == "tile" and record["params"]["predictor_selection"] == "loss"
    assert (table.ae_seconds > 0).all()

    figures = tmp_path / "figures"
    papermill.execute_notebook(str(ROOT / "notebooks" / "feature_prediction.ipynb"), str(tmp_path / "executed.ipynb"),
                               parameters=dict(results=str(out), out_dir=str(figures)), progress_bar=False,
                               kernel_name="python3", start_timeout=300, execution_timeout=600)
    rebuilt = pd.read_csv(figures / "table_2.csv")
    assert len(rebuilt) == 6 and set(rebuilt.procedure) == set(feature_prediction.PROCEDURES)
    assert rebuilt.printed.notna().sum() == 3  # I-I-PW, I-I-PS, I-F-FP printed for SVHN
    assert {p.name for p in figures.glob("fig_*.png")} == {"fig_7.png", "fig_8.png"}


def test_a_csv_without_its_columns_is_refused(tmp_path):
    path = tmp_path / "b4.csv"
    pd.DataFrame([dict(score="accuracy", value=0.5, state="completed")]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="collect it with params/feature_prediction.yaml"):
        feature_prediction.load_runs(path)


def test_the_notebook_on_the_printed_numbers_writes_the_printed_cells_and_statements(tmp_path):
    """notebooks/feature_prediction.ipynb with results="paper", and the committed
    figures/feature_prediction/ it made: Table II's STL-10 I-F-FP cell read by eye from 004's
    text (0.67 +- 0.01), and each figure draws the text's statements as dotted lines at their
    values (Fig. 7: "just above 65%" for I-F-FP on STL-10)."""
    import papermill

    out = tmp_path / "out"
    papermill.execute_notebook(str(ROOT / "notebooks" / "feature_prediction.ipynb"), str(tmp_path / "run.ipynb"),
                               parameters=dict(results="paper", out_dir=str(out)), progress_bar=False,
                               kernel_name="python3", start_timeout=300, execution_timeout=600)
    for folder in (out, ROOT / "figures" / "feature_prediction"):
        table = pd.read_csv(folder / "table_2.csv").set_index(["dataset", "procedure"])
        assert (table.loc[("stl10", "I-F-FP"), "value"], table.loc[("stl10", "I-F-FP"), "spread"]) == (0.67, 0.01)
        assert {p.name for p in folder.glob("fig_*.png")} == {"fig_7.png", "fig_8.png"}
    figure = feature_prediction.fig_7_8(None, "stl10")
    levels = sorted(round(line.get_ydata()[0], 4) for line in figure.axes[0].lines)
    assert levels == [0.35, 0.5, 0.6, 0.65] and "Fig. 7" in figure.axes[0].get_title()
