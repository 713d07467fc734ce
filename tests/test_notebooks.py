"""Every notebook is committed clean and runs through papermill with its smoke parameters."""

import ast
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
import torch

from dplib.run.execute import KERNEL_START_TIMEOUT

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_LIMIT_S = 600  # no notebook cell in these tests waits longer than this


def execute(name, out, **parameters):
    """Execute notebooks/<name> with papermill, bounded per cell; returns the executed notebook."""
    papermill.execute_notebook(str(ROOT / "notebooks" / name), str(out), cwd=str(ROOT), parameters=parameters,
                               progress_bar=False, start_timeout=KERNEL_START_TIMEOUT, execution_timeout=CELL_LIMIT_S)
    return nbformat.read(str(out), as_version=4)


BENCHMARK_CONTRACT = ("seed", "data_root", "weights", "device", "out_dir")  # every benchmark notebook has these


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_clean_with_typed_documented_parameters_that_are_all_used(path):
    cells = json.loads(path.read_text())["cells"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    source = "".join(tagged[0]["source"])
    declared = papermill.inspect_notebook(str(path))
    lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(declared) == len(lines), "papermill could not read every line of the parameters cell"
    untyped = [n for n, p in declared.items() if p["inferred_type_name"] == "None" or not p["help"]]
    assert not untyped, f"parameters without a type annotation or a help comment: {untyped}"
    body = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code" and c is not tagged[0])
    unused = [n for n in declared if not re.search(rf"\b{n}\b", body)]
    assert not unused, f"declared but never used: {unused}"
    if path.name.startswith("b"):
        assert set(BENCHMARK_CONTRACT) <= set(declared)
        assert "notebook_parameters(globals())" in body  # result.json records what the run used


TUTORIALS = sorted(p.name for p in (ROOT / "notebooks").glob("tutorial_*.ipynb"))


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorials_run_offline_from_the_notebooks_folder(tmp_path, name):
    # as JupyterLab runs them: in notebooks/, with their own defaults (random weights, fixtures)
    assert len(TUTORIALS) == 4
    declared = papermill.inspect_notebook(str(ROOT / "notebooks" / name))
    out = {"out_dir": str(tmp_path / "out")} if "out_dir" in declared else {}
    papermill.execute_notebook(str(ROOT / "notebooks" / name), str(tmp_path / name), cwd=str(ROOT / "notebooks"),
                               parameters=out, progress_bar=False, start_timeout=KERNEL_START_TIMEOUT,
                               execution_timeout=CELL_LIMIT_S)
    executed = nbformat.read(str(tmp_path / name), as_version=4)
    images = [o for c in executed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name} drew no figure"


@pytest.mark.parametrize("arch", ["alexnet", "googlenet"])
def test_walkthrough_runs(tmp_path, arch):
    execute("walkthrough.ipynb", tmp_path / "walkthrough.ipynb", arch=arch, weights=None, image_size=96,
            out_dir=str(tmp_path))
    assert (tmp_path / f"features_{arch}.png").stat().st_size > 0
    assert (tmp_path / f"distances_{arch}.png").stat().st_size > 0


def run_notebook(name, tmp_path, **parameters):
    """Execute a benchmark notebook; check that its record holds every parameter it ran with
    (the notebook's defaults with these applied); return the record."""
    execute(name, tmp_path / f"executed_{name}", **parameters)
    record = json.loads((Path(parameters["out_dir"]) / "result.json").read_text())
    defaults = {n: ast.literal_eval(p["default"])
                for n, p in papermill.inspect_notebook(str(ROOT / "notebooks" / name)).items()}
    used = {**defaults, **parameters}
    if used.get("device") == "auto":
        used["device"] = record["params"]["device"]
    assert record["params"] == json.loads(json.dumps(used)), "result.json must record every parameter used"
    return record


@pytest.mark.parametrize("arch", ["alexnet", "resnet18", "inception_v3"])
def test_b1_perceptual_similarity_runs(tmp_path, bapps_root, arch):
    record = run_notebook("b1_perceptual_similarity.ipynb", tmp_path, arch=arch, weights=None,
                          data_root=str(bapps_root), device="cpu", num_workers=0, batch_size=4,
                          patches_per_subset=4, out_dir=str(tmp_path / "run"))
    scores = record["scores"]
    assert {s["point"] for s in scores} == {"early", "semi_early", "mid", "late"}
    assert {s["dataset"] for s in scores if s["score"] == "2afc"} == {
        "traditional", "cnn", "superres", "deblur", "color", "frameinterp", "all"}
    assert all(0 <= s["value"] <= 1 for s in scores) and record["params"]["arch"] == arch
    assert record["versions"]["torch"] and record["timings"]["distances"] > 0
    assert (tmp_path / "run" / "two_afc.png").is_file() and len(list((tmp_path / "run" / "distances").iterdir())) == 8


def test_b1_runs_a_calibrated_variant(tmp_path, bapps_root):
    # "tune": the network trained with the channel weights on BAPPS 2AFC train, then scored
    record = run_notebook("b1_perceptual_similarity.ipynb", tmp_path, arch="squeezenet1_1", points=["early"],
                          weights=None, data_root=str(bapps_root), device="cpu", num_workers=0, batch_size=4,
                          patches_per_subset=4, variant="tune", out_dir=str(tmp_path / "run"))
    from dplib.similarity import load_calibration

    calibration = load_calibration(tmp_path / "run" / "calibration_early.pt")
    assert calibration["variant"] == "tune" and calibration["network"] and len(calibration["history"]) == 10
    assert {s["point"] for s in record["scores"]} == {"early"} and record["params"]["variant"] == "tune"


# analysis_tables and analysis_figures on the paper's scores rebuild every committed table and
# figure: test_demo.py (make demo runs both notebooks on them).


@pytest.fixture(scope="module")
def own_results(tmp_path_factory, bapps_root):
    """A grid-like collected results CSV from real Benchmark 1 runs: a paper network and two
    networks beyond the paper (dplib.extended)."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("own")
    rows = []
    for arch in ("squeezenet1_1", "convnext_tiny", "vit_b_16"):
        record = run_notebook("b1_perceptual_similarity.ipynb", folder, arch=arch, weights=None,
                              data_root=str(bapps_root), device="cpu", num_workers=0, batch_size=6,
                              out_dir=str(folder / arch))
        rows += [dict(r, run_id=arch, state="completed") for r in record["scores"]]
    path = folder / "b1.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.long
def test_analysis_notebooks_on_own_results(tmp_path, own_results):
    for name in ("analysis_tables.ipynb", "analysis_figures.ipynb", "explore.ipynb"):
        out = {} if name == "explore.ipynb" else {"out_dir": str(tmp_path / "out")}
        execute(name, tmp_path / name, results=str(own_results), attribute_input_size=96, **out)
    comparison = (tmp_path / "out" / "comparison_with_paper.csv").read_text()
    assert "b1 2afc all" in comparison and (tmp_path / "out" / "fig_4.png").is_file()
    assert not (tmp_path / "out" / "fig_3.png").exists()  # no Benchmark 4 scores: skipped, not faked
    import pandas as pd

    ranks = pd.read_csv(tmp_path / "out" / "table_3.csv", index_col="arch")
    assert list(ranks.index) == ["squeezenet1_1", "convnext_tiny", "vit_b_16"]  # the paper's first
    assert list(ranks.in_paper) == [True, False, False]


def widget_models(notebook):
    """{model name: [states]} of the widgets an executed notebook saved."""
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    models = {}
    for model in state.values():
        models.setdefault(model["model_name"], []).append(model["state"])
    return models


def test_explore_shows_its_controls_and_the_first_figure(tmp_path):
    notebook = execute("explore.ipynb", tmp_path / "e.ipynb", attribute="depth", score="b3 quality mrd",
                       color_by="family")
    models = widget_models(notebook)
    dropdowns = {m["description"]: m for m in models["DropdownModel"]}
    chosen = {name: m["_options_labels"][m["index"]] for name, m in dropdowns.items()}
    assert chosen == {"attribute": "depth", "score": "b3 quality mrd"}
    [toggle] = models["ToggleButtonsModel"]
    assert toggle["_options_labels"][toggle["index"]] == "family"
    [output] = models["OutputModel"]
    assert output["outputs"][0]["data"]["image/png"]  # the figure drawn without a front end
    assert "b3 quality mrd against depth" in output["outputs"][0]["data"]["text/plain"]


@pytest.fixture(scope="module")
def superres_root(tmp_path_factory):
    from dplib.data import superres

    return superres.write_fixture(tmp_path_factory.mktemp("superres"))


SMOKE_B2 = dict(weights=None, iterations=4, val_every=2, train_images=12, val_images=4, crop=96, num_workers=0,
                device="cpu")


@pytest.mark.parametrize("scale", [4, 8])
def test_b2_super_resolution_runs_and_resumes(tmp_path, superres_root, scale):
    out = tmp_path / "run"
    record = run_notebook("b2_super_resolution.ipynb", tmp_path, arch="squeezenet1_1", point="early", scale=scale,
                          data_root=str(superres_root), out_dir=str(out), **SMOKE_B2)
    assert {(s["score"], s["dataset"]) for s in record["scores"]} == {
        (m, d) for m in ("psnr", "ssim") for d in ("set5", "set14", "bsd100")}
    assert all(s["scale"] == scale for s in record["scores"])
    training = record["training"]
    assert training["step"] == 4
    # a validation either kept a best model or was recorded as collapsed (a flat output, as an
    # untrained x8 network's is): never silently kept
    assert all(h["step"] == training["best_step"] or h["collapsed"] or h["score"] <= training["best_score"]
               for h in training["history"])
    assert training["kept_best"] or training["collapsed"]
    assert record["skipped_small_images"] == 0 and "released test" in record["convention"]  # resize_center: none skipped
    assert all("border 2 px, scikit-image" in s["note"] for s in record["scores"])  # the released metrics
    assert (out / "examples.png").is_file() and (out / "checkpoint.pt").is_file()
    # the same run asked to go further resumes from its checkpoint instead of starting over
    longer = run_notebook("b2_super_resolution.ipynb", tmp_path, arch="squeezenet1_1", point="early", scale=scale,
                          data_root=str(superres_root), out_dir=str(out), **dict(SMOKE_B2, iterations=6))
    assert longer["training"]["resumed_from"] == 4 and longer["training"]["step"] == 6


def test_b2_with_the_other_value_of_every_protocol_switch(tmp_path, superres_root):
    record = run_notebook("b2_super_resolution.ipynb", tmp_path, arch="googlenet", point="mid", scale=4,
                          data_root=str(superres_root), out_dir=str(tmp_path / "run"), train_crop="random",
                          degradation="torch", test_crop="resize_center", residual_blocks=4, normalize_input=True,
                          inception_transform=True, metric_convention="matlab", channel="rgb",
                          **dict(SMOKE_B2, train_images=9, val_images=3))  # the fixture's images of at least 96 px
    assert record["skipped_small_images"] == 3  # random crops cannot use the three 80 x 88 images
    assert all("resize_center" in s["note"] and "RGB, border 4 px" in s["note"] for s in record["scores"])
    assert record["training"]["step"] == 4 and "Y channel" in record["convention"]


def test_b2_refuses_a_scale_that_is_not_a_power_of_two(tmp_path, superres_root):
    with pytest.raises(papermill.PapermillExecutionError, match="power of two"):
        run_notebook("b2_super_resolution.ipynb", tmp_path, scale=3, data_root=str(superres_root),
                     out_dir=str(tmp_path / "run"), **SMOKE_B2)


def test_b3_delineation_runs(tmp_path):
    from dplib.data import roads

    root = roads.write_fixture(tmp_path / "roads")
    record = run_notebook("b3_delineation.ipynb", tmp_path, arch="alexnet", point="mid", weights=None,
                          data_root=str(root), epochs=2, batch_size=4, size=64, num_workers=0,
                          device="cpu", out_dir=str(tmp_path / "run"))
    names = {s["score"] for s in record["scores"]}
    assert names == {"correctness", "completeness", "quality", "correctness_slack3", "completeness_slack3",
                     "quality_slack3"}
    assert record["training"]["step"] == 4 and record["tiles"] == {"train": 8, "valid": 2, "test": 3}
    assert all(s["dataset"] == "mrd" and "3 test images, threshold 0.3" in s["note"] for s in record["scores"])
    assert (tmp_path / "run" / "iterations.png").is_file()
    # the other value of every switch: the standard U-Net, equal weights, the authors' crops and flips,
    # K = 1 in training, selection by the loss, scores of the validation tiles accumulated over iterations
    other = run_notebook("b3_delineation.ipynb", tmp_path, arch="alexnet", point="mid", weights=None,
                         data_root=str(root), epochs=1, batch_size=4, size=64, num_workers=0, device="cpu",
                         unet="standard", base_channels=8, iteration_weights="equal", train_transform="crop_flip",
                         train_iterations_k=1, validation_score="loss", test_split="valid",
                         iteration_scores="accumulated", threshold=0.5, resize_antialias=True,
                         test_batch_statistics=True, out_dir=str(tmp_path / "other"))
    assert other["tiles"] == {"train": 8, "valid": 2} and other["training"]["step"] == 2
    assert all("2 valid images, threshold 0.5" in s["note"] and "accumulated" in s["note"] for s in other["scores"])


SMOKE_B4 = dict(weights=None, ae_epochs=1, mlp_epochs=3, batch_size=16, num_workers=0, device="cpu",
                arch="alexnet", point="semi_early")


@pytest.mark.parametrize("dataset, procedure, variational", [
    ("svhn", "I-I-PS", False), ("svhn", "I-I-PW", False), ("svhn", "F-I-PW", False), ("svhn", "F-I-PS", False),
    ("svhn", "I-F-FP", False), ("svhn", "F-F-FP", False), ("stl10", "I-I-PS", False), ("stl10", "I-I-PS", True)])
def test_b4_autoencoding_runs(tmp_path, embeddings_root, dataset, procedure, variational):
    record = run_notebook("b4_autoencoding.ipynb", tmp_path, dataset=dataset, procedure=procedure,
                          variational=variational, data_root=str(embeddings_root), out_dir=str(tmp_path / "run"),
                          **SMOKE_B4)
    [score] = record["scores"]
    assert score["score"] == "accuracy" and score["dataset"] == dataset and 0 <= score["value"] <= 1
    assert procedure in score["note"] and len(record["predictors"]) == 7
    assert set(record["timings"]) >= {"autoencoder", "embeddings", "predictors"}
    assert (tmp_path / "run" / "summary.png").is_file()


def test_b4_with_the_other_value_of_every_protocol_switch(tmp_path, embeddings_root):
    """Each switch reaches the code (its arithmetic is tested against the released formulas in
    test_b4, test_data_embeddings and test_models): what the run records shows it."""
    record = run_notebook("b4_autoencoding.ipynb", tmp_path, dataset="stl10", procedure="I-F-FP", variational=True,
                          data_root=str(embeddings_root), out_dir=str(tmp_path / "run"), autoencoder="simple",
                          predictor_loss="cross_entropy", predictor_activation="relu", feature_sigmoid=True,
                          feature_decoder_sigmoid=True, normalize_input=True, predictor_selection="accuracy",
                          standardize_embeddings=True, split="ordered", stl10_orientation="transposed",
                          vae_validation="mean", ae_patience=0, mlp_patience=0, **SMOKE_B4)
    assert "cross_entropy" in record["scores"][0]["note"]
    assert all(r["activation"] == "relu" and r["epochs"] == 3 for r in record["predictors"])  # no early stopping
    chosen = record["predictors"][record["chosen_predictor"]]
    assert chosen["best_validation_accuracy"] == max(r["best_validation_accuracy"] for r in record["predictors"])
    assert chosen["best_epoch"] == int(np.argmax(chosen["curve"]))  # the epoch by accuracy too
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    assert not any("running_mean" in k for k in state)  # the simple autoencoder: no batch norm


def test_b4_with_autoencoder_embeddings_switches(tmp_path, embeddings_root):
    """003's run: a perceptual VAE with the released mean loss and KL weight, early stopping,
    the 36-MLP search plus the linear regressors, and the decoder retrained pixel-wise."""
    record = run_notebook("b4_autoencoding.ipynb", tmp_path, dataset="svhn", procedure="I-I-PS", variational=True,
                          data_root=str(embeddings_root), out_dir=str(tmp_path / "run"), loss_reduction="mean",
                          kl_weight=0.02, ae_patience=1, mlp_patience=1, predictor="search", retrain_decoder=True,
                          predictor_selection="loss", svhn_padding="tile", feature_sigmoid=True,
                          **dict(SMOKE_B4, ae_epochs=2))
    scores = {s["score"]: s["value"] for s in record["scores"]}
    assert set(scores) == {"accuracy", "linear_accuracy", "reconstruction_l1"}
    assert 0 <= scores["accuracy"] <= 1 and 0 <= scores["linear_accuracy"] <= 1 and scores["reconstruction_l1"] > 0
    assert len(record["predictors"]) == 36 and len(record["linear_predictors"]) == 2
    assert all(r["epochs"] <= r["best_epoch"] + 2 for r in record["predictors"])  # patience 1
    assert record["decoder_retraining"]["step"] > 0 and "decoder retraining" in record["timings"]
    with pytest.raises(Exception, match="image encoder"):
        execute("b4_autoencoding.ipynb", tmp_path / "bad.ipynb", procedure="F-F-FP", retrain_decoder=True,
                data_root=str(embeddings_root), out_dir=str(tmp_path / "bad"), **SMOKE_B4)
    assert not (tmp_path / "bad" / "checkpoint.pt").exists()  # refused before any training


@pytest.mark.parametrize("arch", ["convnext_tiny", "vit_b_16"])
def test_b4_runs_with_networks_beyond_the_paper(tmp_path, embeddings_root, arch):
    record = run_notebook("b4_autoencoding.ipynb", tmp_path, dataset="svhn", data_root=str(embeddings_root),
                          out_dir=str(tmp_path / "run"), **dict(SMOKE_B4, arch=arch, point="mid"))
    assert record["scores"][0]["arch"] == arch and 0 <= record["scores"][0]["value"] <= 1


def test_b4_is_repeatable_with_the_same_seed(tmp_path, embeddings_root):
    values = [run_notebook("b4_autoencoding.ipynb", tmp_path, dataset="svhn", data_root=str(embeddings_root),
                           out_dir=str(tmp_path / f"run{i}"), **SMOKE_B4)["scores"][0]["value"] for i in range(2)]
    assert values[0] == values[1]
