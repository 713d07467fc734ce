"""Every notebook is committed clean and runs through papermill with its smoke parameters."""

import json
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_with_a_parameters_cell(path):
    cells = json.loads(path.read_text())["cells"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    source = "".join(tagged[0]["source"])
    for name in ("seed", "data_root", "weights", "device", "out_dir"):
        assert f"{name} =" in source, (path.name, name)


@pytest.mark.parametrize("arch", ["alexnet", "googlenet"])
def test_walkthrough_runs(tmp_path, arch):
    out = tmp_path / "walkthrough.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "walkthrough.ipynb"), str(out), cwd=str(ROOT),
                               parameters=dict(arch=arch, weights=None, image_size=96, out_dir=str(tmp_path)),
                               progress_bar=False)
    assert (tmp_path / f"features_{arch}.png").stat().st_size > 0
    assert (tmp_path / f"distances_{arch}.png").stat().st_size > 0


def run_notebook(name, tmp_path, **parameters):
    out = tmp_path / f"executed_{name}"
    papermill.execute_notebook(str(ROOT / "notebooks" / name), str(out), cwd=str(ROOT), parameters=parameters,
                               progress_bar=False)
    return json.loads((Path(parameters["out_dir"]) / "result.json").read_text())


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
