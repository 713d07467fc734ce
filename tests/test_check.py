"""dplib.run.check: the pre-flight of `dplib grid check` and `dplib grid run`: data, weights,
disk, device, and the device-hours a report measured; and `dplib data verify`."""

import json
import shutil
from pathlib import Path

import pytest

from dplib.errors import ParamsError
import yaml

from dplib.data import bapps
from dplib.run import check, cli, plan

from conftest import dplib_cli

ROOT = Path(__file__).parents[1]


def runs_of(path, smoke=True, tmp_path=None):
    spec = plan.load_spec(path, smoke=smoke)
    return spec, plan.expand(spec, runs_dir=tmp_path)


@pytest.fixture
def bapps_copy(tmp_path, bapps_root):
    return Path(shutil.copytree(bapps_root, tmp_path / "bapps"))


def test_a_complete_fixture_passes_and_a_missing_subset_is_one_line_with_its_fix(tmp_path, b1_params, bapps_copy):
    path = b1_params(data_root=str(bapps_copy))
    spec, runs = runs_of(path, tmp_path=tmp_path / "runs")
    problems, _ = check.check(spec, runs, runs_dir=tmp_path / "runs")
    assert problems == []
    shutil.rmtree(bapps_copy / "2afc" / "val" / "deblur")
    problems, _ = check.check(spec, runs, runs_dir=tmp_path / "runs")
    assert [p.what for p in problems] == [f"bapps in {bapps_copy}: 2afc/val/deblur: missing"]
    assert problems[0].fix == f"dplib data fixtures bapps --root {bapps_copy}   (the smoke grid's tiny stand-in)"


def test_grid_run_refuses_to_start_an_incomplete_grid_and_skip_check_starts_it(tmp_path, b1_params, bapps_copy):
    path = b1_params(archs=("alexnet",), data_root=str(bapps_copy))
    shutil.rmtree(bapps_copy / "jnd" / "val" / "cnn")
    refused = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert refused.returncode == 1 and "jnd/val/cnn: missing" in refused.stderr
    assert "nothing was started" in refused.stderr and not (tmp_path / "runs").exists()
    checked = dplib_cli("grid", "check", str(path), "--smoke", cwd=tmp_path)
    assert checked.returncode == 1 and "fix: dplib data fixtures bapps" in checked.stderr
    forced = dplib_cli("grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "runs"), "--skip-check",
                       cwd=tmp_path)
    assert forced.returncode == 1 and "1 failed" in forced.stdout  # it ran, and the notebook met the gap


def test_imagenet_weights_missing_from_the_torch_cache_are_named_with_their_file(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    spec, runs = runs_of(ROOT / "params" / "b1.yaml", smoke=False, tmp_path=tmp_path)
    problems = check.check_weights(runs, spec)
    assert len(problems) == 14 and problems[0].fix.startswith("dplib weights download --for ")
    vgg = next(p for p in problems if "of vgg16 " in p.what)
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in vgg.what  # torchvision's file name
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"weights")
    assert len(check.check_weights(runs, spec)) == 13
    _, smoke = runs_of(ROOT / "params" / "b1.yaml", tmp_path=tmp_path)
    assert check.check_weights(smoke) == []  # random weights need no file


def test_runs_that_need_no_loss_network_need_no_weights(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    spec, runs = runs_of(ROOT / "params" / "feature_prediction.yaml", smoke=False, tmp_path=tmp_path)
    pixel_only = [r for r in runs if r.parameters["procedure"] == "I-I-PW"]
    assert check.check_weights(pixel_only, spec) == []
    assert len(check.check_weights(runs, spec)) == 1  # AlexNet, for the other five procedures


def test_b5s_distance_network_is_checked_beside_its_loss_network(tmp_path, monkeypatch):
    """Benchmark 5 scores with Eq. 1 on ImageNet AlexNet, whatever the run's loss network: a
    vgg16 run needs both files, and a run with another pretraining still AlexNet's ImageNet one."""
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    spec, runs = runs_of(ROOT / "params" / "b5.yaml", smoke=False, tmp_path=tmp_path)
    vgg = [r for r in runs if r.parameters["arch"] == "vgg16" and r.parameters["point"] == "early"]
    assert sorted(check.imagenet_files(vgg)) == [("alexnet", "IMAGENET1K_V1"), ("vgg16", "IMAGENET1K_V1")]
    vgg[0].parameters["weights"] = None  # offline: random weights, the distance network's too
    assert check.imagenet_files(vgg) == {}
    resnet = [r for r in runs if r.parameters["arch"] == "resnet50"][:1]
    resnet[0].parameters["weights"] = "IMAGENET1K_V2"
    assert sorted(check.imagenet_files(resnet)) == [("alexnet", "IMAGENET1K_V1"), ("resnet50", "IMAGENET1K_V2")]


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "params").glob("*.yaml")
                                         if "smoke" in (yaml.safe_load(p.read_text()) or {})))
def test_each_smoke_grid_asks_the_disk_for_what_its_fixture_runs_write(tmp_path, name):
    """A smoke grid runs on the bundled fixtures (at most 96 images per split): its pre-flight must
    not ask for the full datasets' feature caches (37 GB for the 003 grid's, before its smoke block
    said how many autoencoder images its runs read), or a CI machine with a small disk refuses it."""
    spec, runs = runs_of(ROOT / "params" / f"{name}.yaml", tmp_path=tmp_path)
    largest = 0  # each run's cache (checkpoints are as large as the full runs': the models are the same)
    for run in runs:
        code = check.benchmark(run.benchmark).code()
        largest = max(largest, getattr(code, "disk_bytes", lambda parameters: (0, 0))(run.parameters)[1])
    assert largest < 2**28, f"{name}: a cache of {largest / 2**30:.2f} GB"  # 96 STL-10 images x vgg16's early: 0.14


def test_free_disk_for_the_checkpoints_and_the_largest_caches_at_once(tmp_path, monkeypatch):
    spec, runs = runs_of(ROOT / "params" / "b4.yaml", smoke=False, tmp_path=tmp_path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(check.shutil, "disk_usage", lambda path: usage._replace(free=10 * 2**30))
    one, two = check.check_disk(runs, tmp_path, workers=1), check.check_disk(runs, tmp_path, workers=2)
    assert len(one) == 1 and "the 112 runs to do need about" in one[0].what and "10.0 GB are free" in one[0].what
    needed = [float(p.what.split("about ")[1].split(" GB")[0]) for p in (one[0], two[0])]
    assert needed[1] > needed[0]  # a second worker holds a second feature cache at once
    monkeypatch.setattr(check.shutil, "disk_usage", lambda path: usage._replace(free=10 * 2**40))
    assert check.check_disk(runs, tmp_path) == []


def test_a_run_asking_for_cuda_without_one(tmp_path):
    import torch

    spec, runs = runs_of(ROOT / "params" / "b1.yaml", tmp_path=tmp_path)
    for run in runs:
        run.parameters["device"] = "cuda"
    expected = [] if torch.cuda.is_available() else ["runs ask for device cuda, and torch sees no CUDA GPU here"]
    assert [p.what for p in check.check_device(runs, "local")] == expected
    assert check.check_device(runs, "slurm") == []  # the node decides


def test_device_hours_from_a_device_report(tmp_path):
    """B2: a report measured 0.1 and 0.3 s per step (float32) on two networks: 0.2 s x 200K steps
    x 112 runs = 1244.4 hours; a benchmark the report did not measure gives no estimate."""
    spec, runs = runs_of(ROOT / "params" / "b2.yaml", smoke=False, tmp_path=tmp_path)
    report = {"device": "Test GPU", "smoke": False, "steps": [
        {"benchmark": "b2", "arch": "vgg16", "precision": "float32", "seconds_per_step": 0.1},
        {"benchmark": "b2", "arch": "alexnet", "precision": "float32", "seconds_per_step": 0.3},
        {"benchmark": "b2", "arch": "alexnet", "precision": "float16", "seconds_per_step": 0.01}]}
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "Test_GPU.json").write_text(json.dumps(report))
    hours = check.device_hours(runs, tmp_path / "gpu")
    assert hours == {"Test GPU": pytest.approx(0.2 * 200_000 * 112 / 3600)}
    _, b3 = runs_of(ROOT / "params" / "b3.yaml", smoke=False, tmp_path=tmp_path)
    assert check.device_hours(b3, tmp_path / "gpu") == {}


def test_data_verify_refuses_an_incomplete_dataset_in_one_line_each(tmp_path, bapps_copy, capsys):
    assert cli.main(["data", "verify", "bapps", "--root", str(bapps_copy)]) == 0
    for folder in ("ref", "p0", "p1", "judge"):
        sorted((bapps_copy / "2afc" / "val" / "color" / folder).iterdir())[0].unlink()
    assert cli.main(["data", "verify", "bapps", "--root", str(bapps_copy)]) == 1
    error = capsys.readouterr().err
    assert "2afc/val/color: 5 items, the fixture has 6" in error
    assert f"fix: dplib data download bapps --root {bapps_copy}" in error


def test_what_download_fetches_is_what_the_grids_runs_read():
    """`dplib data download superres` without --for: a run of the B2 notebook's defaults (seed
    42, resize_center: any size); with --for params/b2.yaml the union over its 112 runs, the
    same sample; the smoke grid's is its own."""
    default = cli.data_plan("superres")["superres"][1]
    assert default["coco"] == {("train", 42, 10_000, 0), ("val", 42, 100, 0)}
    assert cli.data_plan("superres", ROOT / "params" / "b2.yaml")["superres"][1] == default
    smoke = cli.data_plan("superres", ROOT / "params" / "b2.yaml", smoke=True)["superres"]
    assert smoke[1]["coco"] == {("train", 42, 12, 0), ("val", 42, 4, 0)} and smoke[0].endswith("data/fixtures/superres")
    both = cli.data_plan("embeddings", ROOT / "params" / "b4.yaml")
    assert {d: n["splits"] for d, (_, n) in both.items()} == {"svhn": {"extra", "train", "test"},
                                                              "stl10": {"unlabeled", "train", "test"}}
    assert cli.data_plan("bapps", include_optional=True)["bapps"][1]["2afc/train"] == set(bapps.TRAIN_SUBSETS)


def test_a_pretraining_grids_weights_are_checked_by_name_before_any_run(tmp_path, monkeypatch):
    import torch
    import yaml

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    spec = plan.load_spec(ROOT / "params" / "b1.yaml", grid_file=ROOT / "params" / "grid_pretraining.yaml")
    problems = check.check_weights(plan.expand(spec), spec, ROOT / "params" / "grid_pretraining.yaml")
    # torchvision's own file names (ResNet50_Weights.IMAGENET1K_V2, ViT_B_16_Weights.IMAGENET1K_SWAG_LINEAR_V1)
    assert any("IMAGENET1K_V2 weights of resnet50" in p.what and "resnet50-11ad3fa6.pth" in p.what for p in problems)
    assert any("IMAGENET1K_SWAG_LINEAR_V1 weights of vit_b_16" in p.what and "vit_b_16_lc_swag-4e70ced5.pth" in p.what
               for p in problems)
    assert all("--grid" in p.fix for p in problems) and len(problems) == 10
    axis_file = tmp_path / "grid.yaml"
    axis_file.write_text(yaml.safe_dump({"arch": ["resnet50"], "point": ["early"],
                                         "axes": {"weights": ["IMAGENET1K_V9"]}}))
    spec = plan.load_spec(ROOT / "params" / "b1.yaml", grid_file=axis_file)
    # a weight name the architecture lacks is refused as the grid is expanded, before the
    # pre-flight (issue 33; this check was check_weights' Problem before)
    with pytest.raises(ParamsError, match=r"axes.weights = 'IMAGENET1K_V9': not a torchvision weight name of "
                                          r"resnet50 \(IMAGENET1K_V1, IMAGENET1K_V2"):
        plan.expand(spec)
    # a path that is no file stays the pre-flight's problem (it may be written before the runs start)
    axis_file.write_text(yaml.safe_dump({"arch": ["resnet50"], "point": ["early"],
                                         "axes": {"weights": ["weights/mine.pt"]}}))
    spec = plan.load_spec(ROOT / "params" / "b1.yaml", grid_file=axis_file)
    [problem] = check.check_weights(plan.expand(spec), spec, axis_file)
    assert "'weights/mine.pt' of resnet50 are neither a file nor one of its" in problem.what
    assert "IMAGENET1K_V1, IMAGENET1K_V2" in problem.what
