"""dplib.analysis.autoencoder_embeddings: 003's Tables III, IV, VI, VII and VIII rebuilt from
a collected grid; checked on hand-made runs with hand-computed values, the "Any" rule against
every printed Any row, and its smoke grid through the runner and the notebook."""

from pathlib import Path

import pandas as pd
import pytest

from dplib.analysis import autoencoder_embeddings

from conftest import write_collected

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(benchmark="b4", dataset="svhn", scale="", arch="alexnet", point="semi_early", note="", state="completed")


def collected_003(tmp_path):
    """A collected autoencoder_embeddings CSV on SVHN: the four autoencoders at z 32 and 64, each run with
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
    return write_collected(tmp_path, "autoencoder_embeddings", rows)


def test_003s_accuracy_tables_per_z_and_any_next_to_the_printed(tmp_path):
    runs = autoencoder_embeddings.load_runs(collected_003(tmp_path))
    assert len(runs) == 8  # one row per run, the failed one left out
    table = autoencoder_embeddings.accuracy_table(runs, "IV").set_index("z")  # SVHN, MLPs
    assert table.loc["32", "AE"] == pytest.approx(70.0) and table.loc["64", "perceptual AE"] == pytest.approx(85.0)
    assert table.loc["any", "VAE"] == pytest.approx(72.0) and table.loc["any", "perceptual VAE"] == pytest.approx(78.0)
    assert table.loc["32", "AE (printed)"] == 76.5 and table.loc["any", "perceptual AE (printed)"] == 84.0
    assert pd.isna(table.loc["128", "AE"]) and table.loc["128", "AE (printed)"] == 81.9  # z 128 not run
    assert list(table.index) == ["32", "64", "128", "any"]
    linear = autoencoder_embeddings.accuracy_table(runs, "VII").set_index("z")  # SVHN, linear regressors
    assert linear.loc["any", "AE"] == pytest.approx(25.0) and linear.loc["64", "VAE (printed)"] == 41.2
    assert autoencoder_embeddings.accuracy_table(runs, "III").AE.isna().all()  # STL-10 not run: printed only


def test_003s_any_row_is_the_best_over_z_in_every_printed_table():
    """The rule the rebuild uses for "Any", applied to the printed per-z numbers, gives each
    printed Any row."""
    printed = autoencoder_embeddings.load_printed()
    for table, (dataset, score) in autoencoder_embeddings.TABLES.items():
        rows = printed[(printed.table == table) & (printed.z != "any")]
        runs = pd.DataFrame(dict(dataset=dataset, autoencoder=rows.procedure, z=rows.z.astype(int),
                                 **{score: rows.value / 100}))
        rebuilt = autoencoder_embeddings.accuracy_table(runs, table, printed).set_index("z").loc["any"]
        for name in autoencoder_embeddings.AUTOENCODERS.values():
            assert rebuilt[name] == pytest.approx(rebuilt[f"{name} (printed)"]), (table, name)


def test_003s_table_8_relative_reconstruction(tmp_path):
    runs = autoencoder_embeddings.load_runs(collected_003(tmp_path))
    table = autoencoder_embeddings.table_8(runs).set_index("autoencoder")
    # best L1 over z: AE 80 (z 64), VAE 85, P. AE 100, P. VAE 160; relative to 80
    assert table.loc["AE", "z"] == 64 and table.loc["AE", "measured"] == pytest.approx(100.0)
    assert table.loc["VAE", "measured"] == pytest.approx(100 * 80 / 85)
    assert table.loc["perceptual VAE", "measured"] == pytest.approx(50.0) and table.loc["perceptual VAE", "z"] == 32
    assert table.loc["perceptual AE", "printed"] == 75.0  # SVHN's printed row beside it
    assert list(table.index) == list(autoencoder_embeddings.AUTOENCODERS.values())


@pytest.mark.long
def test_the_autoencoder_embeddings_smoke_grid_runs_collects_and_rebuilds_its_tables(tmp_path, smoke_params):
    """params/autoencoder_embeddings.yaml at smoke size (the four autoencoders on SVHN, z = 16)
    through the grid runner, collected with its extra columns, then its notebook. STL-10 goes
    through the same notebook (b4_autoencoding) in the demo's B4 runs (test_demo.py) and in
    tests/test_notebooks.py (STL-10 autoencoders, VAE and I-F-FP); both datasets' printed cells:
    test_the_notebook_on_the_printed_numbers_writes_the_printed_cells."""
    import subprocess
    import sys

    import papermill

    from dplib.run import grid
    from dplib.data import embeddings

    root = embeddings.write_fixture(embeddings.write_fixture(tmp_path / "emb", "svhn"), "stl10")
    path = smoke_params("autoencoder_embeddings", root, {"embedding_size": [16], "dataset": ["svhn"]}, mlp_epochs=2)
    done = subprocess.run([sys.executable, "-m", "dplib", "grid", "run", str(path), "--smoke", "--workers", "2",
                           "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out, table = grid.collect(path, smoke=True, runs_dir=tmp_path / "runs", out=tmp_path / "autoencoder_embeddings.csv")
    assert set(table.state) == {"completed"} and len(table) == 4 * 3  # three scores per run
    assert set(table.score) == {"accuracy", "linear_accuracy", "reconstruction_l1"}
    runs = autoencoder_embeddings.load_runs(out)
    assert len(runs) == 4 and set(runs.autoencoder) == set(autoencoder_embeddings.AUTOENCODERS.values())

    tables = tmp_path / "tables"
    papermill.execute_notebook(str(ROOT / "notebooks" / "autoencoder_embeddings.ipynb"), str(tmp_path / "executed.ipynb"),
                               parameters=dict(results=str(out), out_dir=str(tables)), progress_bar=False,
                               kernel_name="python3", start_timeout=300, execution_timeout=600)
    rebuilt = pd.read_csv(tables / "table_4.csv", dtype={"z": str}).set_index("z")
    assert rebuilt.loc["16", "AE"] == pytest.approx(100 * runs.set_index(["dataset", "autoencoder"]).loc[
        ("svhn", "AE"), "accuracy"].item())
    assert rebuilt.loc["32", "AE (printed)"] == 76.5
    table_8 = pd.read_csv(tables / "table_8.csv")
    assert len(table_8) == 4 and table_8.measured.max() == pytest.approx(100.0) and table_8.printed.notna().all()


def test_a_csv_without_its_columns_is_refused(tmp_path):
    path = tmp_path / "b4.csv"
    pd.DataFrame([dict(score="accuracy", value=0.5, state="completed")]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="collect it with params/autoencoder_embeddings.yaml"):
        autoencoder_embeddings.load_runs(path)


def test_the_notebook_on_the_printed_numbers_writes_the_printed_cells(tmp_path):
    """notebooks/autoencoder_embeddings.ipynb with results="paper", and the committed
    figures/autoencoder_embeddings/ it made: cells read by eye from 003's text (Table IV,
    SVHN: AE at z 32 is 76.5%; Table III, STL-10: perceptual VAE at z 256 is 64.8%, and its Any
    row 64.8%)."""
    import papermill

    out = tmp_path / "out"
    papermill.execute_notebook(str(ROOT / "notebooks" / "autoencoder_embeddings.ipynb"), str(tmp_path / "run.ipynb"),
                               parameters=dict(results="paper", out_dir=str(out)), progress_bar=False,
                               kernel_name="python3", start_timeout=300, execution_timeout=600)
    for folder in (out, ROOT / "figures" / "autoencoder_embeddings"):
        table_4 = pd.read_csv(folder / "table_4.csv", dtype={"z": str}).set_index("z")
        table_3 = pd.read_csv(folder / "table_3.csv", dtype={"z": str}).set_index("z")
        assert table_4.loc["32", "AE"] == 76.5, folder  # printed alone: a column per autoencoder
        assert table_3.loc["256", "perceptual VAE"] == 64.8 and table_3.loc["any", "perceptual VAE"] == 64.8
        assert sorted(p.name for p in folder.glob("*.csv")) == [f"table_{n}.csv" for n in (3, 4, 6, 7, 8)]
