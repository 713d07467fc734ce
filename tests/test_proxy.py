"""dplib.analysis.proxy: rank correlations and the proxy's regret on hand-computed tables, the
bootstrap's statistics against scipy's, and the paper's own data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dplib.analysis import proxy
from dplib.analysis.scores import load_paper_scores


def small():
    """Four loss networks, a cheap score and an expensive one, values chosen by hand."""
    index = pd.MultiIndex.from_tuples([("a", "early"), ("b", "early"), ("c", "late"), ("d", "late")],
                                      names=["arch", "point"])
    return pd.DataFrame({"cheap": [4.0, 3.0, 2.0, 1.0], "costly": [1.0, 5.0, 3.0, 2.0],
                         "alike": [4.0, 2.0, 3.0, 1.0]}, index=index)


def test_rank_correlations_hand_computed():
    table = proxy.rank_correlations(small(), resamples=200).set_index(["score_a", "score_b"])
    # cheap vs alike: ranks (4, 3, 2, 1) and (4, 2, 3, 1): d = (0, 1, -1, 0),
    # rho = 1 - 6 * 2 / (4 * 15) = 0.8; pairs: 5 concordant, 1 discordant, tau = 4 / 6
    assert table.loc[("cheap", "alike"), "spearman_rho"] == pytest.approx(0.8)
    assert table.loc[("cheap", "alike"), "kendall_tau"] == pytest.approx(4 / 6)
    # cheap vs costly: ranks (4, 3, 2, 1) and (1, 4, 3, 2): d = (3, -1, -1, -1), rho = 1 - 6 * 12 / 60 = -0.2;
    # pairs (a,b) (a,c) (a,d) discordant, (b,c) (b,d) (c,d) concordant: tau = 0
    assert table.loc[("cheap", "costly"), "spearman_rho"] == pytest.approx(-0.2)
    assert table.loc[("cheap", "costly"), "kendall_tau"] == pytest.approx(0.0)
    assert list(table["n"]) == [4, 4, 4]


def test_the_proxys_regret_and_overlap_hand_computed():
    rows = proxy.proxy_choice(small(), proxy="cheap", ks=(1, 2, 5)).set_index(["target", "k"])
    # by cheap: a, b, c, d. costly's best is b (5), its range 5 - 1 = 4.
    # k = 1: cheap picks a, costly 1: regret 4, all of the range; top-1 overlap {a} & {b} = 0
    assert rows.loc[("costly", 1), "regret"] == 4 and rows.loc[("costly", 1), "regret_share_of_range"] == 1.0
    assert rows.loc[("costly", 1), "top_k_overlap"] == 0
    # k = 2: a and b run the costly way, b is kept: no regret; top-2 {a, b} & {b, c} = 1 of 2
    assert rows.loc[("costly", 2), "regret"] == 0 and rows.loc[("costly", 2), "top_k_overlap"] == 0.5
    assert rows.loc[("costly", 1), "proxy_choice"] == "a early" and rows.loc[("costly", 1), "best"] == "b early"
    assert ("costly", 5) not in rows.index  # more than the four networks: left out
    # alike's best is a (4), cheap's pick too: no regret at any k
    assert rows.loc[("alike", 1), "regret"] == 0 and rows.loc[("alike", 1), "top_k_overlap"] == 1


def test_the_bootstraps_statistics_are_scipys_per_resample():
    generator = np.random.default_rng(3)
    x, y = generator.normal(size=30).round(1), generator.normal(size=30).round(1)  # rounded: ties occur
    index = generator.integers(0, 30, (25, 30))
    rho, tau = proxy.resampled_correlations(x, y, index)
    for r, rows in enumerate(index):
        assert rho[r] == pytest.approx(stats.spearmanr(x[rows], y[rows]).statistic, abs=1e-12)
        assert tau[r] == pytest.approx(stats.kendalltau(x[rows], y[rows]).statistic, abs=1e-12)  # tau-b


def test_the_intervals_hold_the_estimate_and_repeat_with_the_seed():
    generator = np.random.default_rng(0)
    x = generator.normal(size=40)
    table = pd.DataFrame({"u": x, "v": x + generator.normal(size=40)})
    first, second = proxy.rank_correlations(table, seed=5), proxy.rank_correlations(table, seed=5)
    pd.testing.assert_frame_equal(first, second)
    row = first.iloc[0]
    assert row.spearman_low < row.spearman_rho < row.spearman_high and -1 <= row.spearman_low
    assert row.kendall_low < row.kendall_tau < row.kendall_high and row.kendall_high <= 1


def test_the_papers_data_answers_the_proxy_question():
    table = proxy.wide(load_paper_scores())
    assert list(table.columns) == list(proxy.KEYS) and len(table) == 56
    correlations = proxy.rank_correlations(table, resamples=200)
    assert len(correlations) == len(proxy.KEYS) * (len(proxy.KEYS) - 1) // 2
    pair = correlations.set_index(["score_a", "score_b"]).loc[("b1 2afc all", "b4 accuracy stl10")]
    # the printed cells of Tables V and XI, correlated directly
    scores = load_paper_scores()
    b1 = scores[(scores.benchmark == "b1") & (scores.score == "2afc") & (scores.dataset == "all")]
    b4 = scores[(scores.benchmark == "b4") & (scores.dataset == "stl10")]
    merged = b1.merge(b4, on=["arch", "point"])
    assert pair.spearman_rho == pytest.approx(stats.spearmanr(merged.value_x, merged.value_y).statistic)
    choice = proxy.proxy_choice(table)
    assert set(choice.target) == set(proxy.KEYS) - {proxy.CHEAP} and (choice.regret >= 0).all()


def test_a_fifth_benchmark_joins_the_wide_table_with_lower_is_better_scores_negated():
    from dplib.benchmarks.record import score_row

    rows = [score_row("b1", "2afc", v, dataset="all", arch=a, point="early") for a, v in (("vgg16", 0.7), ("alexnet", 0.6))]
    rows += [score_row("b5", "distance", v, dataset="set5", arch=a, point="early") for a, v in (("vgg16", 0.1), ("alexnet", 0.3))]
    rows += [score_row("b1", "2afc", 0.5, dataset="cnn", arch="vgg16", point="early")]  # per subset: not a paper score
    table = proxy.wide(pd.DataFrame(rows), keys=None)
    assert list(table.columns) == ["b1 2afc all", "b5 distance set5"]
    assert table.loc[("vgg16", "early"), "b5 distance set5"] == -0.1  # lower is better: higher goodness is better
    # so B1 choosing vgg16 (its best) picks b5's best too: no regret
    [row] = proxy.proxy_choice(table, proxy="b1 2afc all", ks=(1,)).to_dict("records")
    assert row["regret"] == 0 and row["best"] == "vgg16 early"
