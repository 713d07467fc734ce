"""dplib.analysis.tables: hand-computed cases, and the paper's own Tables III and IV rebuilt from its scores."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from dplib.analysis import tables
from dplib.analysis.scores import PAPER_DIR, load_paper_scores
from dplib.benchmarks.record import score_row

matplotlib.use("Agg")


def toy_scores():
    """3 architectures x 2 points, two scores of b1 and one of b2."""
    values = {  # (score, dataset): {arch: (early, late)}
        ("2afc", "all"): {"vgg16": (0.60, 0.70), "alexnet": (0.65, 0.68), "resnet18": (0.70, 0.50)},
        ("jnd_map", "all"): {"vgg16": (0.50, 0.40), "alexnet": (0.30, 0.60), "resnet18": (0.45, 0.45)},
    }
    rows = [score_row("b1", s, v, dataset=d, arch=a, point=p)
            for (s, d), archs in values.items() for a, pair in archs.items() for p, v in zip(("early", "late"), pair)]
    rows += [score_row("b2", "psnr", v, dataset="set5", scale=4, arch=a, point="early")
             for a, v in (("vgg16", 20.0), ("alexnet", 30.0), ("resnet18", 25.0))]
    return pd.DataFrame(rows)


def test_rank_table_hand_computed():
    table = tables.rank_table(toy_scores())
    # 2afc best: vgg16 .70 = resnet18 .70 (tie: ranks 1 and 2 -> 1.5 each), alexnet .68 -> 3
    # jnd best: alexnet .60 -> 1, vgg16 .50 -> 2, resnet18 .45 -> 3
    assert table.loc["vgg16", "b1"] == pytest.approx((1.5 + 2) / 2)
    assert table.loc["alexnet", "b1"] == pytest.approx((3 + 1) / 2)
    assert table.loc["resnet18", "b1"] == pytest.approx((1.5 + 3) / 2)
    assert table.loc["alexnet", "b2"] == 1 and table.loc["vgg16", "b2"] == 3
    assert table.loc["vgg16", "all"] == pytest.approx((1.75 + 3) / 2)  # benchmarks weighted equally
    assert list(table.index) == ["vgg16", "resnet18", "alexnet"]  # the paper's architecture order


def test_best_points_hand_computed_and_ties_take_the_earlier_point():
    table = tables.best_points(toy_scores())
    assert table.loc["vgg16", "b1 2afc all"] == "late" and table.loc["resnet18", "b1 2afc all"] == "early"
    assert table.loc["resnet18", "b1 jnd_map all"] == "early"  # .45 at both: the earlier point


def test_correlations_hand_computed():
    attributes = pd.DataFrame({"arch": ["vgg16", "alexnet", "resnet18"] * 2, "point": ["early"] * 3 + ["late"] * 3,
                               "depth": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "constant": [1] * 6})
    scores = pd.DataFrame([score_row("b1", "2afc", 0.1 * d, dataset="all", arch=a, point=p)
                           for a, p, d in attributes[["arch", "point", "depth"]].itertuples(index=False)])
    table = tables.attribute_correlations(scores, attributes)
    row = table[(table.attribute == "depth") & (table.scope == "all points")].iloc[0]
    assert row.pearson_r == pytest.approx(1.0) and row.spearman_rho == pytest.approx(1.0) and row.n == 6
    assert "constant" not in set(table.attribute)  # nothing to correlate
    best = table[(table.attribute == "depth") & (table.scope == "best points")].iloc[0]
    assert best.n == 3


def test_point_versus_architecture_hand_computed():
    table = tables.point_versus_architecture(toy_scores()).set_index("score")
    row = table.loc["b1 2afc all"]
    # best architecture by best point: vgg16 (.70, first of the tie), worst point .60; worst arch alexnet, best .68
    assert row.best_architecture == "vgg16" and row.its_worst_point == pytest.approx(0.60)
    assert row.worst_architecture == "alexnet" and row.its_best_point == pytest.approx(0.68)


def test_compare_deltas_and_rank_correlation():
    paper = toy_scores()
    ours = paper.copy()
    ours["value"] = ours.value + 0.01
    cells, per_score = tables.compare(ours, paper)
    assert np.allclose(cells.delta, 0.01)
    assert per_score.loc["b1 2afc all", "spearman_rho"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def paper():
    return load_paper_scores()


def test_paper_scores_are_complete_where_the_text_allows(paper):
    counts = paper.groupby(["benchmark"]).size()
    assert counts["b1"] == 2 * 56 and counts["b3"] == 3 * 56 and counts["b4"] == 2 * 56
    assert counts["b2"] == 12 * 56 - 3 * 4 * 4  # Table VIII: 4 rows not recoverable
    assert (paper[paper.note.str.contains("Table VIII")].score == "psnr").all()
    assert len(paper[paper.note.str.contains("two digits")]) == 13


def test_rebuilt_table_3_within_rounding_for_benchmarks_1_3_4(paper):
    rebuilt = tables.rank_table(paper)
    printed = pd.read_csv(PAPER_DIR / "table_3.csv", index_col="arch")
    difference = (rebuilt - printed).abs()
    # one tie of rounded scores moves an average of 2 (B1, B4) or 3 (B3) scores by 0.25 or less
    assert difference[["b1", "b3", "b4"]].max().max() <= 0.25 + 1e-9
    # Benchmark 2: Table VIII's four lost rows move the averages (see results/paper/README.md)
    assert difference["b2"].max() < 1.5
    assert rebuilt["b2"].corr(printed["b2"], method="spearman") > 0.9


def test_rebuilt_table_4_equals_printed_except_one_cell(paper):
    rebuilt = tables.best_points(paper, list(tables.TABLE_4_KEYS.values()))
    rebuilt.columns = list(tables.TABLE_4_KEYS)
    printed = pd.read_csv(PAPER_DIR / "table_4.csv", index_col="arch")
    differs = (rebuilt != printed).stack()
    assert list(differs[differs].index) == [("squeezenet1_1", "mrd_all")]


def test_score_table_layout(paper):
    table = tables.score_table(paper, tables.PAPER_TABLES["table_10"])
    assert table.shape == (14, 12) and table.loc["vgg11", ("b3 correctness mrd", "late")] == pytest.approx(41.7)


def test_rank_table_counts_only_the_papers_scores_by_default():
    scores = toy_scores()
    extra = [score_row("b1", "2afc", v, dataset="cnn", arch=a, point="early")  # a per-subset score of our runs
             for a, v in (("vgg16", 0.1), ("alexnet", 0.9), ("resnet18", 0.5))]
    with_extra = pd.concat([scores, pd.DataFrame(extra)], ignore_index=True)
    pd.testing.assert_frame_equal(tables.rank_table(with_extra), tables.rank_table(scores))
    assert tables.rank_table(with_extra, paper_scores=False).loc["alexnet", "b1"] != \
        tables.rank_table(scores).loc["alexnet", "b1"]


def calibrated_results(folder):
    """A results folder as `dplib grid collect` leaves it after params/b1.yaml and
    params/b1_calibrated.yaml: b1.csv (baseline, with one stray lin row a user's variant axis
    put there) and b1_calibrated.csv (lin and tune); values chosen by hand."""
    folder.mkdir()
    base = toy_scores().assign(variant=lambda t: np.where(t.benchmark == "b1", "baseline", None),
                               run_id="r", state="completed")
    stray = pd.DataFrame([dict(score_row("b1", "2afc", 0.99, dataset="all", arch="vgg16", point="early"),
                               variant="lin", run_id="s", state="completed")])
    pd.concat([base, stray]).to_csv(folder / "b1.csv", index=False)
    rows = [dict(score_row("b1", s, v, dataset="all", arch=a, point=p), variant=variant, run_id="c",
                 state="completed")
            for variant, s, a, p, v in (("lin", "2afc", "vgg16", "early", 0.75), ("lin", "2afc", "vgg16", "late", 0.72),
                                        ("tune", "2afc", "vgg16", "late", 0.78), ("lin", "jnd_map", "vgg16", "late", 0.61),
                                        ("lin", "2afc", "alexnet", "late", 0.71))]
    pd.DataFrame(rows).to_csv(folder / "b1_calibrated.csv", index=False)
    return folder


def test_calibrated_against_baseline_puts_each_variant_beside_the_uncalibrated_metric(tmp_path):
    folder = calibrated_results(tmp_path / "results")
    table = tables.calibrated_against_baseline(folder)
    assert list(table.index) == [("vgg16", "early"), ("vgg16", "late"), ("alexnet", "late")]  # the paper's order
    assert table.loc[("vgg16", "early"), ("2afc", "baseline")] == 0.60  # not the stray lin row of b1.csv
    assert table.loc[("vgg16", "early"), ("2afc", "lin")] == 0.75
    assert table.loc[("vgg16", "late"), ("2afc", "tune")] == 0.78
    assert table.loc[("vgg16", "late"), ("jnd_map", "lin")] == 0.61
    assert table.loc[("alexnet", "late"), ("2afc", "baseline")] == 0.68
    assert tables.calibrated_against_baseline("paper").empty


def test_the_paper_tables_read_the_baseline_and_a_variant_on_request(tmp_path):
    folder = calibrated_results(tmp_path / "results")
    baseline = tables.load_scores(folder)
    assert 0.99 not in set(baseline.value) and len(baseline[baseline.benchmark == "b1"]) == 12
    lin = tables.load_scores(folder, variant="lin")
    assert sorted(lin[lin.benchmark == "b1"].value) == [0.61, 0.71, 0.72, 0.75]
    assert len(lin[lin.benchmark == "b2"]) == 3  # the other benchmarks as they are


def test_results_without_calibrated_runs_have_no_calibrated_table(tmp_path):
    path = tmp_path / "b1.csv"
    toy_scores().assign(run_id="r", state="completed").to_csv(path, index=False)  # collected before variant existed
    assert tables.calibrated_against_baseline(path).empty
    folder = tmp_path / "results"
    folder.mkdir()
    toy_scores().assign(run_id="r", state="completed").to_csv(folder / "b1.csv", index=False)
    assert tables.calibrated_against_baseline(folder).empty


def test_a_lower_is_better_score_is_ranked_and_chosen_the_other_way():
    """b5's perceptual distance (its record: lower is better), by hand: vgg16 0.30 / 0.20,
    alexnet 0.10 / 0.40, resnet18 0.25 / 0.25."""
    rows = [score_row("b5", "distance", v, dataset="set5", arch=a, point=p)
            for a, pair in (("vgg16", (0.30, 0.20)), ("alexnet", (0.10, 0.40)), ("resnet18", (0.25, 0.25)))
            for p, v in zip(("early", "late"), pair)]
    scores = pd.DataFrame(rows)
    best = tables.best_per_architecture(scores).set_index("arch")
    assert best.loc["vgg16", "point"] == "late" and best.loc["vgg16", "value"] == 0.20
    assert best.loc["alexnet", "point"] == "early" and best.loc["resnet18", "point"] == "early"  # tie: earlier
    ranks = tables.rank_table(scores)  # a benchmark beyond the paper's keeps every score in the ranks
    assert ranks.b5.to_dict() == {"vgg16": 2.0, "alexnet": 1.0, "resnet18": 3.0}
    [row] = tables.point_versus_architecture(scores).to_dict("records")
    assert row["best_architecture"] == "alexnet" and row["its_worst_point"] == 0.40
    assert row["worst_architecture"] == "resnet18" and row["its_best_point"] == 0.25


def test_a_declared_score_no_paper_table_holds_is_said_to_be_left_out_not_dropped_silently():
    """A score a record declares (here B1's SRCC on KADID-10k, beyond the paper) reaches no paper
    table: paper_scores_only warns, naming it, and rank_table(paper_scores=False) ranks it."""
    import warnings

    import pandas as pd

    from dplib.analysis.tables import ScoreLeftOut, paper_scores_only, rank_table

    rows = [dict(benchmark="b1", score=score, dataset=dataset, scale=pd.NA, arch=arch, point="early", value=value)
            for arch, value in (("alexnet", 0.7), ("vgg16", 0.6))
            for score, dataset in (("2afc", "all"), ("srcc", "kadid10k"))]
    scores = pd.DataFrame(rows)
    scores["scale"] = scores["scale"].astype("Int64")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = paper_scores_only(scores)
    assert set(kept.score) == {"2afc"}
    [warning] = [w for w in caught if issubclass(w.category, ScoreLeftOut)]
    assert "b1's score 'srcc' is in none of the paper's tables" in str(warning.message)
    assert "b1" in rank_table(scores, paper_scores=False).columns
