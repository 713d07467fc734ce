"""The real run, rehearsed: for each benchmark and both companion grids, `dplib data download`
fetches from a miniature of the real host (tests/replicas.py: the same paths, markup and
archive layouts, on 127.0.0.1) what the grid's runs read, as the README says, and then the
benchmark notebook, at its protocol defaults with only the smoke block's sizes, finds every
file it reads. A download that fetches the wrong sample, or nothing, fails here."""

import json
from pathlib import Path

import papermill
import pytest

from dplib.run import cli, plan
from dplib.run.execute import KERNEL_START_TIMEOUT

from replicas import Replica, host

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def replica(http_server):
    return Replica(http_server)


def download(name, params, root):
    """`dplib data download NAME --for params/<params>.yaml --smoke --root ROOT`, as the README has it."""
    assert cli.main(["data", "download", name, "--for", str(ROOT / "params" / f"{params}.yaml"), "--smoke",
                     "--root", str(root)]) == 0


def run_notebook(params, root, tmp_path, **only):
    """One run of the params file's smoke grid (the first matching `only`), its data_root the
    download: its record."""
    runs = plan.expand(plan.load_spec(ROOT / "params" / f"{params}.yaml", smoke=True), runs_dir=tmp_path / "runs")
    run = next(r for r in runs if all(r.parameters[k] == v for k, v in only.items()))
    out = tmp_path / "out" / run.run_id
    out.mkdir(parents=True)
    parameters = dict(run.parameters, data_root=str(root), out_dir=str(out))
    papermill.execute_notebook(str(ROOT / run.notebook), str(out / "notebook.ipynb"), parameters=parameters,
                               progress_bar=False, kernel_name="python3", cwd=str(tmp_path),
                               start_timeout=KERNEL_START_TIMEOUT, execution_timeout=600)
    return json.loads((out / "result.json").read_text())


def test_b1_bapps_downloaded_then_scored(tmp_path, replica, monkeypatch):
    host(monkeypatch, replica.bapps(per_subset=6))
    download("bapps", "b1", tmp_path / "bapps")
    assert not (tmp_path / "bapps" / "2afc" / "train").exists()  # B1 reads the validation sets only
    record = run_notebook("b1", tmp_path / "bapps", tmp_path)
    two_afc = {r["dataset"] for r in record["scores"] if r["score"] == "2afc"}
    assert two_afc == {"traditional", "cnn", "superres", "deblur", "color", "frameinterp", "all"}


def test_b2_the_downloaded_sample_is_the_one_the_notebook_reads(tmp_path, replica, monkeypatch):
    host(monkeypatch, replica.coco(train=30, val=10), replica.edsr_benchmark())
    download("superres", "b2", tmp_path / "superres")
    train = list((tmp_path / "superres" / "coco" / "train2014").iterdir())
    assert len(train) == 12 and len(list((tmp_path / "superres" / "BSD100").glob("*.png"))) == 100
    record = run_notebook("b2", tmp_path / "superres", tmp_path)
    assert record["params"]["seed"] == 42 and record["params"]["train_crop"] == "resize_center"
    assert {r["dataset"] for r in record["scores"]} == {"set5", "set14", "bsd100"}
    assert not (tmp_path / "superres" / ".downloads").exists()  # no archive or staging folder left


def test_b3_tiles_listed_by_absolute_hrefs_downloaded_then_scored(tmp_path, replica, monkeypatch):
    host(monkeypatch, replica.mass_roads({"train": 3, "valid": 1, "test": 2}))
    download("roads", "b3", tmp_path / "roads")
    assert len(list((tmp_path / "roads" / "train" / "sat").glob("*.tiff"))) == 3
    record = run_notebook("b3", tmp_path / "roads", tmp_path)
    assert {r["score"] for r in record["scores"]} >= {"correctness", "completeness", "quality"}


@pytest.mark.parametrize("params", ["b4", "autoencoder_embeddings", "feature_prediction"])
def test_b4_and_the_companion_grids_svhn_and_stl10_downloaded_then_run(tmp_path, replica, monkeypatch, params):
    host(monkeypatch, replica.svhn({"train": 48, "test": 24, "extra": 64}),
         replica.stl10({"train": 40, "test": 20, "unlabeled": 32}))
    download("embeddings", params, tmp_path / "embeddings")
    assert not list((tmp_path / "embeddings").rglob("*.tar.gz"))  # STL-10's archive removed after extraction
    for dataset in ("svhn", "stl10"):
        record = run_notebook(params, tmp_path / "embeddings", tmp_path, dataset=dataset)
        assert record["scores"][0]["score"] == "accuracy" and record["scores"][0]["dataset"] == dataset


# ----- Benchmark 1 beyond BAPPS: each dataset fetched from a replica of its host, then scored ------

@pytest.mark.exercises(datasets=["kadid10k", "tid2013", "pipal", "nights"])  # each its own run, below
@pytest.mark.parametrize("name", ["kadid10k", "tid2013", "pipal", "nights"])
def test_b1_beyond_bapps_each_dataset_downloaded_verified_then_scored(tmp_path, replica, monkeypatch, name):
    host(monkeypatch, getattr(replica, name)())
    root = tmp_path / name
    download(name, "b1_datasets", root)
    assert cli.main(["data", "verify", name, "--for", str(ROOT / "params" / "b1_datasets.yaml"), "--smoke",
                     "--root", str(root)]) == 0
    assert not (root / ".downloads").exists() and not list(root.glob("*.rar")) and not list(root.glob("*.zip"))
    runs = plan.expand(plan.load_spec(ROOT / "params" / "b1_datasets.yaml", smoke=True), runs_dir=tmp_path / "runs")
    run = runs[0]
    out = tmp_path / "out"
    out.mkdir()
    parameters = dict(run.parameters, datasets=[name], out_dir=str(out), **{f"{name}_root": str(root)})
    papermill.execute_notebook(str(ROOT / run.notebook), str(out / "notebook.ipynb"), parameters=parameters,
                               progress_bar=False, kernel_name="python3", cwd=str(tmp_path),
                               start_timeout=KERNEL_START_TIMEOUT, execution_timeout=600)
    record = json.loads((out / "result.json").read_text())
    scored = {(r["score"], r["dataset"]) for r in record["scores"]}
    if name == "nights":  # its test split: 2 unanimous triplets of the replica's 3
        assert scored == {("2afc", "nights")}
    else:
        assert scored == {("srcc", name), ("krcc", name), ("plcc", name)}
    assert all(-1 <= r["value"] <= 1 for r in record["scores"]) and record["params"]["datasets"] == [name]
