"""dplib.analysis.scores: the paper's scores and a grid's collected results as tidy tables."""

import pandas as pd
import pytest

from dplib.analysis import scores
from dplib.benchmarks.record import SCORE_COLUMNS, score_row


def test_load_results_reads_collected_tables_in_the_paper_columns(tmp_path):
    rows = [dict(score_row("b2", "psnr", 25.0, dataset="set5", scale=4, arch="vgg16", point="early"),
                 run_id="a", state="completed"),
            dict(benchmark="b2", score="", dataset="", scale="", arch="vgg11", point="early", value=float("nan"),
                 note="boom", run_id="b", state="failed")]
    pd.DataFrame(rows).to_csv(tmp_path / "b2.csv", index=False)
    table = scores.load_results(tmp_path / "b2.csv")
    assert list(table.columns[:8]) == SCORE_COLUMNS and len(table) == 1
    assert table.scale.iloc[0] == 4 and table.value.iloc[0] == 25.0
    assert len(scores.load_results(tmp_path)) == 1
    # a companion grid's CSV in the same folder is its own analysis's, not the benchmarks'
    pd.DataFrame([dict(rows[0], z=64, run_id="c")]).to_csv(tmp_path / "feature_prediction.csv", index=False)
    assert list(scores.load_results(tmp_path).run_id) == ["a"]
    with pytest.raises(FileNotFoundError, match="dplib grid collect"):
        scores.load_results(tmp_path / "nothing")
