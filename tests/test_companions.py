"""dplib.companions: 004's Table II, the data of its Figures 7-8 and its relative training
time, rebuilt from a collected grid; checked on hand-made runs with hand-computed values."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dplib import companions

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(benchmark="b4", dataset="svhn", scale="", arch="alexnet", point="semi_early", note="", state="completed")


def write_collected(tmp_path, name, rows):
    """The rows as a collected CSV, with one failed run added (never a result)."""
    rows = rows + [dict(rows[0], value=float("nan"), state="failed", run_id="x")]
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def collected(tmp_path):
    """A collected companion_004 CSV: two procedures, two z, two repeats, on SVHN."""
    rows = []
    accuracies = {("I-I-PS", 64): (0.80, 0.84), ("I-I-PS", 128): (0.86, 0.88),
                  ("I-F-FP", 64): (0.85, 0.85), ("I-F-FP", 128): (0.70, 0.90)}
    seconds = {"I-I-PS": (100.0, 120.0), "I-F-FP": (55.0, 66.0)}  # per run, 10 epochs
    for (procedure, z), values in accuracies.items():
        for repeat, value in enumerate(values):
            rows.append(dict(RUN, score="accuracy", value=value, procedure=procedure, z=z, repeat=repeat,
                             ae_epochs=10, ae_seconds=seconds[procedure][repeat], run_id=f"{procedure}{z}{repeat}"))
    return write_collected(tmp_path, "companion_004", rows)


def test_table_2_takes_each_procedures_best_z_with_the_uncorrected_spread(tmp_path):
    runs = companions.load_companion_004(collected(tmp_path))
    assert len(runs) == 8  # the failed run is not a result
    table = companions.table_2_004(runs).set_index("procedure")
    # I-I-PS: z = 128 (mean 0.87 over 0.82); spread sqrt(((0.86-0.87)^2 + (0.88-0.87)^2) / 2) = 0.01
    assert table.loc["I-I-PS", "z"] == 128
    assert table.loc["I-I-PS", "accuracy"] == pytest.approx(0.87)
    assert table.loc["I-I-PS", "accuracy_spread"] == pytest.approx(0.01)
    # I-F-FP: equal means 0.85 and 0.80 -> z = 64, spread 0
    assert table.loc["I-F-FP", "z"] == 64 and table.loc["I-F-FP", "accuracy_spread"] == pytest.approx(0.0)
    # the printed Table II next to it (0.87 and 0.86 on SVHN)
    assert table.loc["I-I-PS", "printed"] == 0.87 and table.loc["I-F-FP", "printed"] == 0.86


def test_relative_time_per_epoch_and_the_texts_statement(tmp_path):
    runs = companions.load_companion_004(collected(tmp_path))
    ratio = companions.relative_time_004(runs).set_index("dataset")
    # I-F-FP 6.05 s per epoch (5.5 and 6.6), I-I-PS 11 s (10 and 12): 0.55, what 004 states for SVHN
    assert ratio.loc["svhn", "measured"] == pytest.approx(6.05 / 11.0)
    assert ratio.loc["svhn", "stated"] == 0.55
    only_one = companions.relative_time_004(runs[runs.procedure == "I-I-PS"])
    assert only_one.measured.isna().all()  # I-F-FP not run: no ratio, no error


def test_figure_8_plots_each_procedure_and_z_at_its_mean_time_and_accuracy(tmp_path):
    runs = companions.load_companion_004(collected(tmp_path))
    figure = companions.fig_7_8(runs, "svhn")
    points = np.concatenate([c.get_offsets() for c in figure.axes[0].collections if len(c.get_offsets())
                             and c.get_offsets().shape[1] == 2 and type(c).__name__ == "PathCollection"])
    expected = {(11.0, 0.82), (11.0, 0.87), (6.05, 0.85), (6.05, 0.80)}
    assert {(round(x, 4), round(y, 4)) for x, y in points} == expected
    assert "Fig. 8" in figure.axes[0].get_title()


def collected_003(tmp_path):
    """A collected companion_003 CSV on SVHN: the four autoencoders at z 32 and 64, each run with
    its three scores (MLP accuracy, linear accuracy, reconstruction L1)."""
    rows = []
    values = {  # (procedure, variational, z): (accuracy, linear_accuracy, reconstruction_l1)
        ("I-I-PW", False, 32): (0.70, 0.20, 100.0), ("I-I-PW", False, 64): (0.75, 0.25, 80.0),
        ("I-I-PW", True, 32): (0.72, 0.30, 90.0), ("I-I-PW", True, 64): (0.71, 0.35, 85.0),
        ("I-I-PS", False, 32): (0.80, 0.60, 120.0), ("I-I-PS", False, 64): (0.85, 0.65, 100.0),
        ("I-I-PS", True, 32): (0.78, 0.62, 160.0), ("I-I-PS", True, 64): (0.76, 0.66, 200.0)}
    for (procedure, variational, z), scores in values.items():
        for score, value in zip(("accuracy", "linear_accuracy", "reconstruction_l1"), scores):
            rows.append(dict(RUN, score=score, value=value, procedure=procedure, variational=variational, z=z,
                             ae_seconds=10.0, run_id=f"{procedure}{variational}{z}"))
    return write_collected(tmp_path, "companion_003", rows)


def test_003s_accuracy_tables_per_z_and_any_next_to_the_printed(tmp_path):
    runs = companions.load_companion_003(collected_003(tmp_path))
    assert len(runs) == 8  # one row per run, the failed one left out
    table = companions.accuracy_table_003(runs, "IV").set_index("z")  # SVHN, MLPs
    assert table.loc["32", "AE"] == pytest.approx(70.0) and table.loc["64", "perceptual AE"] == pytest.approx(85.0)
    assert table.loc["any", "VAE"] == pytest.approx(72.0) and table.loc["any", "perceptual VAE"] == pytest.approx(78.0)
    assert table.loc["32", "AE (printed)"] == 76.5 and table.loc["any", "perceptual AE (printed)"] == 84.0
    assert pd.isna(table.loc["128", "AE"]) and table.loc["128", "AE (printed)"] == 81.9  # z 128 not run
    assert list(table.index) == ["32", "64", "128", "any"]
    linear = companions.accuracy_table_003(runs, "VII").set_index("z")  # SVHN, linear regressors
    assert linear.loc["any", "AE"] == pytest.approx(25.0) and linear.loc["64", "VAE (printed)"] == 41.2
    assert companions.accuracy_table_003(runs, "III").AE.isna().all()  # STL-10 not run: printed only


def test_003s_any_row_is_the_best_over_z_in_every_printed_table():
    """The rule the rebuild uses for "Any", applied to the printed per-z numbers, gives each
    printed Any row."""
    printed = companions.load_printed_003()
    for table, (dataset, score) in companions.TABLES_003.items():
        rows = printed[(printed.table == table) & (printed.z != "any")]
        runs = pd.DataFrame(dict(dataset=dataset, autoencoder=rows.procedure, z=rows.z.astype(int),
                                 **{score: rows.value / 100}))
        rebuilt = companions.accuracy_table_003(runs, table, printed).set_index("z").loc["any"]
        for name in companions.AUTOENCODERS_003.values():
            assert rebuilt[name] == pytest.approx(rebuilt[f"{name} (printed)"]), (table, name)


def test_003s_table_8_relative_reconstruction(tmp_path):
    runs = companions.load_companion_003(collected_003(tmp_path))
    table = companions.table_8_003(runs).set_index("autoencoder")
    # best L1 over z: AE 80 (z 64), VAE 85, P. AE 100, P. VAE 160; relative to 80
    assert table.loc["AE", "z"] == 64 and table.loc["AE", "measured"] == pytest.approx(100.0)
    assert table.loc["VAE", "measured"] == pytest.approx(100 * 80 / 85)
    assert table.loc["perceptual VAE", "measured"] == pytest.approx(50.0) and table.loc["perceptual VAE", "z"] == 32
    assert table.loc["perceptual AE", "printed"] == 75.0  # SVHN's printed row beside it
    assert list(table.index) == list(companions.AUTOENCODERS_003.values())


def test_a_csv_without_the_companion_columns_is_refused(tmp_path):
    path = tmp_path / "b4.csv"
    pd.DataFrame([dict(score="accuracy", value=0.5, state="completed")]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="collect it with params/companion_004.yaml"):
        companions.load_companion_004(path)
    with pytest.raises(ValueError, match="collect it with params/companion_003.yaml"):
        companions.load_companion_003(path)


def test_the_companion_004_smoke_grid_runs_collects_and_rebuilds_its_table_and_figures(tmp_path, smoke_params):
    """params/companion_004.yaml at smoke size (six procedures x two datasets, one z, one
    repeat) through the grid runner, collected with its extra columns, then its notebook."""
    import json
    import subprocess
    import sys

    import papermill

    from dplib import grid
    from dplib.data import embeddings

    root = embeddings.write_fixture(embeddings.write_fixture(tmp_path / "emb", "svhn"), "stl10")
    path = smoke_params("companion_004", root, {"embedding_size": [16], "seed": [0]}, mlp_epochs=2)
    done = subprocess.run([sys.executable, "-m", "dplib.cli", "grid", "run", str(path), "--smoke", "--workers", "2",
                           "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(list((tmp_path / "runs" / "companion_004").iterdir())) == 12  # its own runs folder
    out, table = grid.collect(path, smoke=True, runs_dir=tmp_path / "runs", out=tmp_path / "companion_004.csv")
    assert set(table.state) == {"completed"} and len(table) == 12
    assert set(table.procedure) == set(companions.PROCEDURES_004) and set(table.z) == {16}
    record = json.loads(next((tmp_path / "runs" / "companion_004").glob("*/result.json")).read_text())
    assert record["params"]["svhn_padding"] == "tile" and record["params"]["predictor_selection"] == "loss"
    assert (table.ae_seconds > 0).all()

    figures = tmp_path / "figures"
    papermill.execute_notebook(str(ROOT / "notebooks" / "companion_004.ipynb"), str(tmp_path / "executed.ipynb"),
                               parameters=dict(results=str(out), out_dir=str(figures)), progress_bar=False,
                               kernel_name="python3", start_timeout=300, execution_timeout=600)
    rebuilt = pd.read_csv(figures / "table_2.csv")
    assert len(rebuilt) == 12 and set(rebuilt.procedure) == set(companions.PROCEDURES_004)
    assert rebuilt.printed.notna().sum() == 6  # I-I-PW, I-I-PS, I-F-FP printed for both datasets
    assert {p.name for p in figures.glob("fig_*.png")} == {"fig_7.png", "fig_8.png"}


def test_the_companion_003_smoke_grid_runs_collects_and_rebuilds_its_tables(tmp_path, smoke_params):
    """params/companion_003.yaml at smoke size (four autoencoders x two datasets, z = 16)
    through the grid runner, collected with its extra columns, then its notebook."""
    import subprocess
    import sys

    import papermill

    from dplib import grid
    from dplib.data import embeddings

    root = embeddings.write_fixture(embeddings.write_fixture(tmp_path / "emb", "svhn"), "stl10")
    path = smoke_params("companion_003", root, {"embedding_size": [16]}, mlp_epochs=2)
    done = subprocess.run([sys.executable, "-m", "dplib.cli", "grid", "run", str(path), "--smoke", "--workers", "2",
                           "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out, table = grid.collect(path, smoke=True, runs_dir=tmp_path / "runs", out=tmp_path / "companion_003.csv")
    assert set(table.state) == {"completed"} and len(table) == 8 * 3  # three scores per run
    assert set(table.score) == {"accuracy", "linear_accuracy", "reconstruction_l1"}
    runs = companions.load_companion_003(out)
    assert len(runs) == 8 and set(runs.autoencoder) == set(companions.AUTOENCODERS_003.values())

    tables = tmp_path / "tables"
    papermill.execute_notebook(str(ROOT / "notebooks" / "companion_003.ipynb"), str(tmp_path / "executed.ipynb"),
                               parameters=dict(results=str(out), out_dir=str(tables)), progress_bar=False,
                               kernel_name="python3", start_timeout=300, execution_timeout=600)
    rebuilt = pd.read_csv(tables / "table_4.csv", dtype={"z": str}).set_index("z")
    assert rebuilt.loc["16", "AE"] == pytest.approx(100 * runs.set_index(["dataset", "autoencoder"]).loc[
        ("svhn", "AE"), "accuracy"].item())
    assert rebuilt.loc["32", "AE (printed)"] == 76.5
    table_8 = pd.read_csv(tables / "table_8.csv")
    assert len(table_8) == 8 and table_8.measured.max() == pytest.approx(100.0) and table_8.printed.notna().all()


@pytest.mark.parametrize("name", ["companion_003", "companion_004"])
def test_the_committed_companion_figures_are_what_the_notebook_makes_of_the_printed_numbers(tmp_path, name):
    import papermill

    papermill.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(tmp_path / "executed.ipynb"),
                               parameters=dict(results="paper", out_dir=str(tmp_path / "out")), progress_bar=False,
                               kernel_name="python3", start_timeout=300, execution_timeout=600)
    committed = ROOT / "figures" / name
    names = sorted(p.name for p in committed.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "out").iterdir())
    for name in names:
        assert (tmp_path / "out" / name).read_bytes() == (committed / name).read_bytes(), name
