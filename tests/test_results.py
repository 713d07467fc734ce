"""dplib.results: atomic records and tidy tables."""

import json

import pandas as pd
import pytest

from dplib import results


def test_write_json_atomic_leaves_no_temporary_and_replaces(tmp_path):
    path = tmp_path / "a" / "record.json"
    results.write_json_atomic(path, {"x": 1})
    results.write_json_atomic(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2} and [p.name for p in path.parent.iterdir()] == ["record.json"]
    with pytest.raises(TypeError):
        results.write_json_atomic(path, {"x": object.__new__(type("Unserialisable", (), {"__str__": None}))})
    assert json.loads(path.read_text()) == {"x": 2} and len(list(path.parent.iterdir())) == 1


def test_read_json_tolerates_missing_and_half_written(tmp_path):
    assert results.read_json(tmp_path / "none.json") is None
    (tmp_path / "half.json").write_text('{"a": ')
    assert results.read_json(tmp_path / "half.json") is None


def test_write_result_record(tmp_path):
    timer = results.Timer()
    with timer("phase"):
        pass
    rows = [results.score_row("b1", "2afc", 0.7, dataset="all", arch="vgg16", point="late")]
    record = results.write_result(tmp_path, "b1", rows, params={"arch": "vgg16"}, timings=timer.seconds)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["scores"] == rows and on_disk["versions"]["torch"] and "phase" in on_disk["timings"]
    assert record["benchmark"] == "b1"
    with pytest.raises(ValueError, match="score_row"):
        results.write_result(tmp_path, "b1", [{"score": "x"}], params={})


def test_load_results_reads_collected_tables_in_the_paper_columns(tmp_path):
    rows = [dict(results.score_row("b2", "psnr", 25.0, dataset="set5", scale=4, arch="vgg16", point="early"),
                 run_id="a", state="completed"),
            dict(benchmark="b2", score="", dataset="", scale="", arch="vgg11", point="early", value=float("nan"),
                 note="boom", run_id="b", state="failed")]
    pd.DataFrame(rows).to_csv(tmp_path / "b2.csv", index=False)
    table = results.load_results(tmp_path / "b2.csv")
    assert list(table.columns[:8]) == results.SCORE_COLUMNS and len(table) == 1
    assert table.scale.iloc[0] == 4 and table.value.iloc[0] == 25.0
    assert len(results.load_results(tmp_path)) == 1
    # a companion grid's CSV in the same folder is its own analysis's, not the benchmarks'
    pd.DataFrame([dict(rows[0], z=64, run_id="c")]).to_csv(tmp_path / "companion_004.csv", index=False)
    assert list(results.load_results(tmp_path).run_id) == ["a"]
    with pytest.raises(FileNotFoundError, match="dplib grid collect"):
        results.load_results(tmp_path / "nothing")
