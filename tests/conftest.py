"""Shared fixtures: tiny datasets in their real on-disk formats, and params files pointing at them."""

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")  # notebook kernels and grid workers share 2 cores


@pytest.fixture(scope="session")
def bapps_root(tmp_path_factory):
    from dplib.data import bapps

    return bapps.write_fixture(tmp_path_factory.mktemp("bapps"), patches_per_subset=6)


@pytest.fixture
def b1_params(tmp_path, bapps_root):
    """A params file for Benchmark 1 whose smoke block uses the session's BAPPS fixture."""

    def write(archs=("alexnet", "squeezenet1_1"), **overrides):
        spec = yaml.safe_load((ROOT / "params" / "b1.yaml").read_text())
        spec["notebook"] = str(ROOT / spec["notebook"])
        spec["smoke"]["parameters"]["data_root"] = str(bapps_root)
        spec["smoke"]["parameters"].update(overrides)
        spec["smoke"]["axes"]["arch"] = list(archs)
        path = tmp_path / "params" / "b1.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(spec))
        (path.parent / "grid.yaml").write_text((ROOT / "params" / "grid.yaml").read_text())
        return path

    return write
