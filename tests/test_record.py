"""dplib.benchmarks.record: the run record a benchmark notebook writes (result.json)."""

import json

import pytest

from dplib.benchmarks import record


def test_write_result_record(tmp_path):
    timer = record.Timer()
    with timer("phase"):
        pass
    rows = [record.score_row("b1", "2afc", 0.7, dataset="all", arch="vgg16", point="late")]
    written = record.write_result(tmp_path, "b1", rows, params={"arch": "vgg16"}, timings=timer.seconds)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["scores"] == rows and on_disk["versions"]["torch"] and "phase" in on_disk["timings"]
    assert written["benchmark"] == "b1"
    with pytest.raises(ValueError, match="score_row"):
        record.write_result(tmp_path, "b1", [{"score": "x"}], params={})


def test_versions_are_what_the_imported_packages_say_without_importing_torch():
    # read from the builds' version.py (a run's own process does not load torch): the values the
    # imported packages themselves give, "2.14.1+cu130" and all
    import subprocess
    import sys

    import numpy
    import torch
    import torchvision

    assert record.versions() == {"python": sys.version.split()[0], "torch": torch.__version__,
                                 "torchvision": torchvision.__version__, "numpy": numpy.__version__,
                                 "dplib": "0.1.0", "cuda": torch.version.cuda}
    probe = "import sys; from dplib.benchmarks.record import versions; versions(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120).stdout == "False\n"
