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
