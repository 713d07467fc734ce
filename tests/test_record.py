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
