"""dplib.analysis.figures: every plotted point is the score it comes from."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from dplib.analysis import figures, tables
from dplib.analysis.scores import load_paper_scores

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def paper():
    return load_paper_scores()


def points_of(axis):
    """Every (x, y) an axis plots as markers, sorted, rounded."""
    offsets = [c.get_offsets() for c in axis.collections if len(c.get_offsets())]
    return sorted(map(tuple, np.round(np.concatenate(offsets), 6))) if offsets else []


def table_of(paper, key):
    keys = paper[tables.KEY].apply(lambda r: tables.score_key(tuple(r)), axis=1)
    return paper[keys == key]


@pytest.fixture(scope="module")
def attributes():
    from dplib.attributes import attributes_table

    return attributes_table()


def test_figure_4_plots_each_loss_network_at_its_flops_and_2afc(paper, attributes):
    table = table_of(paper, "b1 2afc all").merge(attributes, on=["arch", "point"])
    expected = sorted(zip(np.round(np.log10(table.point_mflops * 1e6), 6), np.round(table.value, 6)))
    assert points_of(figures.fig_4(paper, attributes).axes[0]) == expected and len(expected) == 56


def test_figure_5_plots_each_architectures_best_quality_at_its_top1(paper, attributes):
    table = table_of(paper, "b3 quality mrd")
    best = table.groupby("arch").value.max()
    top1 = attributes.drop_duplicates("arch").set_index("arch").imagenet_top1
    expected = sorted((round(top1[a], 6), round(v, 6)) for a, v in best.items())
    assert points_of(figures.fig_5(paper, attributes).axes[0]) == expected and len(expected) == 14


def test_figure_2_draws_every_architectures_scores_in_point_order(paper):
    figure = figures.fig_2(paper)
    assert len(figure.axes) == 4
    for axis, key in zip(figure.axes, figures.FIG_2_KEYS):
        table = table_of(paper, key)
        lines = [line for line in axis.lines if len(line.get_xdata()) > 1]
        drawn = sorted((round(x, 6), round(y, 6)) for line in lines for x, y in zip(line.get_xdata(), line.get_ydata()))
        expected = sorted((float(figures.POINTS.index(p)), round(v, 6)) for p, v in zip(table.point, table.value))
        assert drawn == expected and len(lines) == table.arch.nunique(), key


def test_figure_3_swarms_the_accuracies_by_point_with_their_means(paper):
    figure = figures.fig_3(paper)
    for axis, key in zip(figure.axes, ("b4 accuracy svhn", "b4 accuracy stl10")):
        table = table_of(paper, key)
        assert sorted(y for _, y in points_of(axis)) == sorted(np.round(table.value, 6))
        means = [line for line in axis.lines if len(line.get_ydata()) == 4][0].get_ydata()
        expected = table.groupby("point").value.mean().reindex(figures.POINTS)
        np.testing.assert_allclose(means, expected, rtol=1e-9)
    assert figures.fig_3(paper[paper.benchmark == "b1"]) is None  # nothing to draw


def test_the_explorers_scatter_and_the_correlation_heat_map(paper, attributes):
    figure = figures.scatter(paper, attributes, "depth", "b1 2afc all")
    table = table_of(paper, "b1 2afc all").merge(attributes, on=["arch", "point"])
    assert points_of(figure.axes[0]) == sorted(zip(np.round(table.depth.astype(float), 6), np.round(table.value, 6)))
    assert "Pearson" in figure.axes[0].get_title()
    correlations = tables.attribute_correlations(paper, attributes)
    heat = figures.fig_correlations(correlations)
    shown = correlations[correlations.scope == "all points"]
    cells = [t for t in heat.axes[0].texts]
    assert len(cells) == len(shown) and {round(r, 2) for r in shown.spearman_rho} == {float(t.get_text()) for t in cells}


def test_the_calibrated_figure_draws_each_variant_against_the_baseline(tmp_path):
    from test_tables import calibrated_results

    table = tables.calibrated_against_baseline(calibrated_results(tmp_path / "results"))
    figure = figures.fig_calibrated(table)
    drawn = sorted(tuple(np.round(p, 6)) for c in figure.axes[0].collections for p in c.get_offsets())
    assert drawn == [(0.6, 0.75), (0.68, 0.71), (0.7, 0.72), (0.7, 0.78)]  # (baseline, calibrated), by hand


def test_the_proxy_figure_shows_every_pairs_correlation_and_each_targets_regret(paper):
    from dplib.analysis import proxy

    table = proxy.wide(paper)
    correlations, choice = proxy.rank_correlations(table, resamples=100), proxy.proxy_choice(table)
    figure = figures.fig_proxy(correlations, choice)
    [heat] = [a for a in figure.axes if a.get_title().startswith("rank correlation")]
    [regret] = [a for a in figure.axes if a.get_title().startswith("choosing by")]
    shown = sorted(float(t.get_text()) for t in heat.texts)
    expected = sorted([1.0] * len(proxy.KEYS) + [round(r, 2) for r in correlations.spearman_rho] * 2)
    assert shown == pytest.approx(expected, abs=1e-9)
    drawn = sorted((x, round(y, 6)) for line in regret.lines for x, y in zip(line.get_xdata(), line.get_ydata())
                   if len(line.get_xdata()) > 1)
    assert drawn == sorted((k, round(v, 6)) for k, v in zip(choice.k, choice.regret_share_of_range))


def test_a_fifth_benchmarks_headline_joins_figure_2_and_a_lower_is_better_score_says_so(paper, attributes):
    import pandas as pd

    from dplib.analysis.explorer import explore
    from dplib.benchmarks.record import score_row

    rows = [score_row("b5", score, value + i, dataset="bsd100", arch=arch, point=point)
            for i, (arch, point) in enumerate([("vgg16", "early"), ("vgg16", "late"), ("alexnet", "early"),
                                               ("alexnet", "late")])
            for score, value in (("psnr", 27.0), ("distance", 0.2))]
    both = pd.concat([paper, pd.DataFrame(rows)], ignore_index=True)
    assert figures.FIG_2_KEYS == ("b1 2afc all", "b2 ssim bsd100 x4", "b3 quality mrd", "b4 accuracy stl10")
    figure = figures.fig_2(both)
    assert [axis.get_title() for axis in figure.axes] == [*figures.FIG_2_KEYS, "b5 psnr bsd100"]
    drawn = sorted(y for line in figure.axes[4].lines if len(line.get_xdata()) > 1 for y in line.get_ydata())
    assert drawn == [27.0, 28.0, 29.0, 30.0]
    lower = figures.fig_2(both, keys=["b5 distance bsd100"])
    assert lower.axes[0].get_title() == "b5 distance bsd100 (lower is better)"
    view = explore(both, attributes, "depth", "b5 distance bsd100")
    labels = dict((value, label) for label, value in view.children[0].children[1].options)
    assert labels["b5 distance bsd100"] == "b5 distance bsd100 (lower is better)"
    assert labels["b1 2afc all"] == "b1 2afc all"


def test_fig_curves_draws_each_runs_logged_losses_and_validations():
    """The curves of `dplib grid collect --curves`: one panel per architecture, one line per run,
    every point a logged interval's mean loss (and below, its validation score)."""
    rows = []
    for run, arch, scale in (("r1", "alexnet", 1.0), ("r2", "vgg16", 2.0), ("r3", "alexnet", 3.0)):
        for step in (10, 20, 30):
            rows.append(dict(run_id=run, state="completed", arch=arch, point="early", step=step, epoch=1,
                             loss=scale / step, lr=1e-3, samples_per_second=3.0,
                             validation=scale * step if step != 20 else None))
    figure = figures.fig_curves(pd.DataFrame(rows))
    top, bottom = figure.axes[:2], figure.axes[2:]
    assert [axis.get_title() for axis in top] == ["arch alexnet", "arch vgg16"]
    drawn = sorted(tuple(map(tuple, line.get_xydata())) for line in top[0].get_lines())
    assert drawn == sorted(tuple((s, scale / s) for s in (10, 20, 30)) for scale in (1.0, 3.0))
    validated = sorted(tuple(map(tuple, line.get_xydata())) for line in bottom[0].get_lines())
    assert validated == sorted(tuple((s, scale * s) for s in (10, 30)) for scale in (1.0, 3.0))
