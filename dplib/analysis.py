"""The paper's analysis, rebuilt from any tidy score table (the paper's or a grid's):
Table III (`rank_table`), Table IV (`best_points`), the attribute correlations behind its
findings, the printed score tables V-XI (`score_table`), and Figures 2-5 (`fig_2`...`fig_5`).

Every score of the paper is better when higher, so "best" is always the maximum.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .lossnets import ARCHITECTURES, POINTS

BENCHMARKS = ("b1", "b2", "b3", "b4")
POINT_LETTERS = {"early": "E", "semi_early": "S", "mid": "M", "late": "L"}
KEY = ["benchmark", "score", "dataset", "scale"]


def architecture_order(names):
    """The paper's architectures in Table II's order, then any others (registered networks,
    timm models) sorted: the order of every table and figure."""
    names = set(names)
    return [a for a in ARCHITECTURES if a in names] + sorted(names - set(ARCHITECTURES))


def mark_paper(table):
    """A table indexed by architecture, with a column saying which rows are the paper's
    networks (when own runs add registered ones)."""
    return table.assign(in_paper=[a in ARCHITECTURES for a in table.index])


def score_key(row):
    """'b2 psnr set5 x4' for a score row (or a tuple of its KEY fields)."""
    benchmark, score, dataset, scale = (row[k] for k in KEY) if not isinstance(row, tuple) else row
    scale = "" if pd.isna(scale) or scale == "" else f" x{int(scale)}"
    return f"{benchmark} {score} {dataset}{scale}".strip()


def _with_keys(scores):
    scores = scores.copy()
    scores["key"] = [score_key(r) for r in scores[KEY].to_dict("records")]
    return scores


def best_per_architecture(scores):
    """For every score and architecture, the best extraction point and its value."""
    scores = _with_keys(scores)
    # ties: the earliest point wins (point order), so the result does not depend on row order
    scores["point_order"] = scores.point.map({p: i for i, p in enumerate(POINTS)})
    ordered = scores.sort_values(["key", "arch", "value", "point_order"], ascending=[True, True, False, True])
    return ordered.groupby(["key", "arch"], sort=False).head(1).drop(columns="point_order").reset_index(drop=True)


def paper_scores_only(scores):
    """The rows of the scores the paper reports (Tables V-XI): our runs add per-subset
    2AFC / JND and slack-3 delineation scores, which Table III must not average in."""
    keys = pd.Series([score_key(r) for r in scores[KEY].to_dict("records")], index=scores.index)
    return scores[keys.map(lambda k: any(holds(k) for holds in PAPER_TABLES.values()))]


def rank_table(scores, paper_scores=True):
    """Table III: per score, architectures ranked 1 (best) .. n by their best extraction
    point; averaged per benchmark (columns b1..b4) and over benchmarks weighted equally
    ("all", the mean of the benchmark averages). By default only the paper's scores count
    (`paper_scores_only`); paper_scores=False ranks on every score in the table.

    Ties share the average of the ranks they span (pandas' method="average"). The paper's
    values come from unrounded scores, so where two printed scores are equal the paper
    may have ranked them apart: such differences are rounding, not disagreements.
    """
    best = best_per_architecture(paper_scores_only(scores) if paper_scores else scores)
    best["rank"] = best.groupby("key").value.rank(ascending=False, method="average")
    table = best.pivot_table(index="arch", columns="benchmark", values="rank", aggfunc="mean")
    table = table.reindex(columns=[b for b in BENCHMARKS if b in table.columns])
    table["all"] = table.mean(axis=1)
    return table.reindex(architecture_order(table.index))


def best_points(scores, keys=None):
    """Table IV: the best extraction point of every architecture for each score (columns)."""
    best = best_per_architecture(scores)
    if keys is not None:
        best = best[best.key.isin(keys)]
    table = best.pivot(index="arch", columns="key", values="point")
    if keys is not None:
        table = table.reindex(columns=list(keys))
    return table.reindex(architecture_order(table.index))


def score_table(scores, key_filter):
    """One of the printed score tables (V-XI) as a wide table: architectures x (score, point).

    key_filter: a function of a score key returning True for the keys the table holds.
    """
    scores = _with_keys(scores)
    scores = scores[scores.key.map(key_filter)]
    table = scores.pivot_table(index="arch", columns=["key", "point"], values="value", aggfunc="first")
    keys = list(dict.fromkeys(scores.key))
    columns = [(k, p) for k in keys for p in POINTS if (k, p) in table.columns]
    return table.reindex(columns=pd.MultiIndex.from_tuples(columns, names=["score", "point"])).reindex(
        architecture_order(table.index))


PAPER_TABLES = {  # printed table -> which score keys it holds
    "table_5": lambda k: k.startswith("b1 ") and k.endswith(" all"),
    "table_6": lambda k: k.startswith("b2 psnr") and k.endswith("x4"),
    "table_7": lambda k: k.startswith("b2 ssim") and k.endswith("x4"),
    "table_8": lambda k: k.startswith("b2 psnr") and k.endswith("x8"),
    "table_9": lambda k: k.startswith("b2 ssim") and k.endswith("x8"),
    "table_10": lambda k: k.startswith("b3 ") and "slack" not in k,
    "table_11": lambda k: k.startswith("b4 accuracy"),
}
# Table IV's columns, as score keys
TABLE_4_KEYS = {"2afc": "b1 2afc all", "jnd_map": "b1 jnd_map all", "ssim_x4_bsd100": "b2 ssim bsd100 x4",
                "ssim_x8_bsd100": "b2 ssim bsd100 x8", "mrd_all": "b3 quality mrd", "svhn": "b4 accuracy svhn",
                "stl10": "b4 accuracy stl10"}


def point_attributes(attributes):
    """The numeric attributes of attributes_table() that vary over loss networks."""
    numeric = attributes.select_dtypes(include=["number", "bool"]).columns
    return [c for c in numeric if attributes[c].nunique() > 1]


def attribute_correlations(scores, attributes):
    """Pearson and Spearman correlation (with p-values) of every attribute against every
    score, over the 56 loss networks ("all points") and over each architecture's best
    point ("best points", 14), as the paper tests "no correlation with ImageNet accuracy".
    One row per score x attribute x scope."""
    scores = _with_keys(scores)
    merged = scores.merge(attributes, on=["arch", "point"], how="inner")
    best = best_per_architecture(scores).merge(attributes, on=["arch", "point"], how="inner")
    rows = []
    for scope, table in (("all points", merged), ("best points", best)):
        for key, group in table.groupby("key", sort=False):
            for attribute in point_attributes(attributes):
                x, y = group[attribute].astype(float), group["value"].astype(float)
                if x.nunique() < 2 or y.nunique() < 2 or len(group) < 3:
                    continue
                pearson = stats.pearsonr(x, y)
                spearman = stats.spearmanr(x, y)
                rows.append(dict(score=key, attribute=attribute, scope=scope, n=len(group),
                                 pearson_r=pearson.statistic, pearson_p=pearson.pvalue,
                                 spearman_rho=spearman.statistic, spearman_p=spearman.pvalue))
    return pd.DataFrame(rows)


def point_versus_architecture(scores):
    """The paper's comparison per score: the best point of the worst architecture vs the
    worst point of the best architecture (architectures ordered by their best point)."""
    scores = _with_keys(scores)
    rows = []
    for key, group in scores.groupby("key", sort=False):
        by_arch = group.groupby("arch").value
        best_values = by_arch.max().reindex(architecture_order(by_arch.groups))  # ties: paper order
        best_arch, worst_arch = best_values.idxmax(), best_values.idxmin()
        rows.append(dict(score=key, best_architecture=best_arch, its_worst_point=by_arch.min()[best_arch],
                         worst_architecture=worst_arch, its_best_point=by_arch.max()[worst_arch],
                         spread_over_points=(by_arch.max() - by_arch.min()).mean(),
                         spread_over_architectures=group.groupby("point").value.agg(lambda v: v.max() - v.min()).mean()))
    table = pd.DataFrame(rows)
    table["worst_arch_best_point_minus_best_arch_worst_point"] = table.its_best_point - table.its_worst_point
    return table


def compare(ours, paper):
    """Per-cell deltas (ours - paper) and, per score, the Spearman rank correlation of the
    56 (or fewer) cells both tables have."""
    key = ["benchmark", "score", "dataset", "scale", "arch", "point"]
    both = ours.merge(paper, on=key, suffixes=("_ours", "_paper"))
    both["delta"] = both.value_ours - both.value_paper
    both = _with_keys(both)
    correlations = both.groupby("key").apply(
        lambda g: pd.Series({"cells": len(g), "spearman_rho": stats.spearmanr(g.value_ours, g.value_paper).statistic
                             if len(g) > 2 else np.nan, "mean_delta": g.delta.mean()}), include_groups=False)
    return both, correlations


def to_files(table, folder, name):
    """Write a table as CSV, Markdown and LaTeX: folder/name.{csv,md,tex}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / f"{name}.csv", float_format="%.6g")
    flat = table.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" ".join(str(c) for c in column if str(c)) for column in flat.columns]
    (folder / f"{name}.md").write_text(flat.to_markdown(floatfmt=".4g") + "\n")
    (folder / f"{name}.tex").write_text(flat.to_latex(float_format="%.4g") + "\n")
    return [folder / f"{name}.{ext}" for ext in ("csv", "md", "tex")]


# ----- figures ------------------------------------------------------------------------------
# Statistical figures are drawn with seaborn over tidy tables; nothing random is drawn (no
# jitter), so rebuilding a figure from the same scores gives the same file.

def _plt():
    import matplotlib.pyplot as plt

    return plt


def _sns():
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return sns


FIG_2_KEYS = ("b1 2afc all", "b2 ssim bsd100 x4", "b3 quality mrd", "b4 accuracy stl10")


def fig_2(scores, keys=FIG_2_KEYS):
    """Fig. 2: each score per extraction point (earliest to latest), one line per architecture."""
    plt, sns = _plt(), _sns()
    scores = _with_keys(scores)
    keys = [k for k in keys if k in set(scores.key)]
    if not keys:
        return None
    figure, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for i, (axis, key) in enumerate(zip(axes[0], keys)):
        table = scores[scores.key == key].copy()
        table["position"] = table.point.map({p: j for j, p in enumerate(POINTS)})
        sns.lineplot(table.sort_values("position"), x="position", y="value", hue="arch", style="arch",
                     hue_order=architecture_order(table.arch), style_order=architecture_order(table.arch), markers=True,
                     dashes=False, palette="tab20", errorbar=None, ax=axis, legend=i == len(keys) - 1)
        axis.set_xticks(range(len(POINTS)), [POINT_LETTERS[p] for p in POINTS])
        axis.set(title=key, xlabel="extraction point", ylabel="score" if i == 0 else "")
    sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1), fontsize=7, title=None)
    figure.tight_layout()
    return figure


def fig_3(scores):
    """Fig. 3: SVHN and STL-10 accuracy of all loss networks grouped by extraction point."""
    plt, sns = _plt(), _sns()
    scores = _with_keys(scores)
    keys = [k for k in ("b4 accuracy svhn", "b4 accuracy stl10") if k in set(scores.key)]
    if not keys:
        return None
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for axis, key in zip(axes[0], keys):
        group = scores[scores.key == key]
        sns.swarmplot(group, x="point", y="value", order=list(POINTS), size=4, ax=axis)
        sns.pointplot(group, x="point", y="value", order=list(POINTS), estimator="mean", errorbar=None,
                      color="black", markers="_", markersize=20, linestyle="none", ax=axis)
        axis.set_xticks(range(len(POINTS)), [POINT_LETTERS[p] for p in POINTS])
        axis.set(title=key, xlabel="extraction point", ylabel="test accuracy")
    figure.tight_layout()
    return figure


def fig_4(scores, attributes, key="b1 2afc all"):
    """Fig. 4: 2AFC of every loss network vs log10 of its forward-pass FLOPs (up to its point)."""
    plt, sns = _plt(), _sns()
    scores = _with_keys(scores)
    merged = scores[scores.key == key].merge(attributes, on=["arch", "point"])
    if merged.empty:
        return None
    merged["log10_flops"] = np.log10(merged.point_mflops * 1e6)
    figure, axis = plt.subplots(figsize=(6, 4))
    sns.scatterplot(merged, x="log10_flops", y="value", hue="point", hue_order=[p for p in POINTS
                                                                              if p in set(merged.point)], ax=axis)
    axis.set(xlabel="log10 FLOPs (multiply-adds) up to the extraction point, 224 px", ylabel=key)
    figure.tight_layout()
    return figure


def fig_5(scores, attributes, key="b3 quality mrd"):
    """Fig. 5: each architecture's best MRD quality vs its ImageNet top-1 accuracy."""
    plt, sns = _plt(), _sns()
    best = best_per_architecture(scores)
    best = best[best.key == key].merge(attributes.drop_duplicates("arch")[["arch", "imagenet_top1"]], on="arch")
    if best.empty:
        return None
    figure, axis = plt.subplots(figsize=(6, 4))
    sns.scatterplot(best, x="imagenet_top1", y="value", ax=axis)
    for row in best.itertuples():
        axis.annotate(row.arch, (row.imagenet_top1, row.value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    axis.set(xlabel="ImageNet top-1 accuracy (%)", ylabel=f"{key} (best point)")
    figure.tight_layout()
    return figure


def fig_correlations(correlations, scope="all points"):
    """The attribute correlations as a heat map: Spearman's rho of each attribute (rows)
    against each score (columns) over the loss networks of `scope`."""
    plt, sns = _plt(), _sns()
    table = correlations[correlations.scope == scope].pivot(index="attribute", columns="score", values="spearman_rho")
    if table.empty:
        return None
    figure, axis = plt.subplots(figsize=(1.0 + 0.55 * table.shape[1], 1.0 + 0.4 * table.shape[0]))
    sns.heatmap(table, vmin=-1, vmax=1, center=0, cmap="vlag", annot=True, fmt=".2f", annot_kws={"size": 6},
                cbar_kws={"label": "Spearman rho"}, ax=axis)
    axis.set(title=f"attributes against scores ({scope})", xlabel="", ylabel="")
    figure.tight_layout()
    return figure


def scatter(scores, attributes, attribute, key, color_by="point"):
    """Any attribute against any score over the loss networks, coloured by point or family,
    with its Pearson and Spearman correlation in the title (the explore notebook's plot)."""
    plt, sns = _plt(), _sns()
    scores = _with_keys(scores)
    merged = scores[scores.key == key].merge(attributes, on=["arch", "point"])
    figure, axis = plt.subplots(figsize=(6, 4))
    sns.scatterplot(merged.assign(x=merged[attribute].astype(float)), x="x", y="value", hue=color_by, ax=axis)
    x, y = merged[attribute].astype(float), merged.value
    if x.nunique() > 1 and len(merged) > 2:
        axis.set_title(f"Pearson r = {stats.pearsonr(x, y).statistic:.2f}, "
                       f"Spearman rho = {stats.spearmanr(x, y).statistic:.2f} (n = {len(merged)})", fontsize=9)
    axis.set(xlabel=attribute, ylabel=key)
    if axis.get_legend():
        sns.move_legend(axis, "best", fontsize=7, title=color_by)
    figure.tight_layout()
    return figure


def figure_png(figure):
    """A figure as PNG bytes (no timestamp), and the figure closed."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    _plt().close(figure)
    return buffer.getvalue()


def explorer(scores, attributes, attribute, key, color_by="point"):
    """The explore notebook's controls: a Dropdown for the attribute (x), one for the score (y),
    ToggleButtons for the colours, and `scatter` below them, redrawn on every change.
    Returns an ipywidgets.VBox; display it.

    Figures go into the output area as data (Output.outputs), never by capturing what a cell
    displays: a headless client (papermill's nbclient) answers captured output with comm
    messages that ipykernel 7 handles while the cell still runs, and the cell's reply can be
    lost, so the notebook hangs (papermill issue 723, nbclient issue 312). JupyterLab renders
    both the same way.
    """
    import base64

    import ipywidgets as widgets

    keys = sorted({score_key(r) for r in scores[KEY].to_dict("records")})
    x = widgets.Dropdown(options=point_attributes(attributes), value=attribute, description="attribute")
    y = widgets.Dropdown(options=keys, value=key if key in keys else keys[0], description="score")
    colour = widgets.ToggleButtons(options=["point", "family"], value=color_by, description="colour by")
    output = widgets.Output()

    def draw(change=None):
        png = figure_png(scatter(scores, attributes, x.value, y.value, color_by=colour.value))
        output.outputs = ({"output_type": "display_data", "metadata": {},
                           "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                    "text/plain": f"<scatter of {y.value} against {x.value}>"}},)

    for control in (x, y, colour):
        control.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([x, y]), colour, output])


def save_figure(figure, folder, name):
    """folder/name.png and folder/name.pdf, without timestamps so reruns give the same files.
    A figure of None (its scores are not in the table) writes nothing."""
    if figure is None:
        print(f"{name}: the scores it plots are not in these results; skipped")
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(folder / f"{name}.png", dpi=120, metadata={"Software": None})
    figure.savefig(folder / f"{name}.pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    return [folder / f"{name}.png", folder / f"{name}.pdf"]


# ----- tables I and II, and where the scores come from --------------------------------------

def load_scores(results="paper"):
    """"paper" -> the paper's Tables V-XI; a path -> a grid's collected results (a CSV or a folder)."""
    from .results import load_paper_scores, load_results

    return load_paper_scores() if str(results) == "paper" else load_results(results)


def table_1(attributes, paper_architectures):
    """Table I rebuilt (measured) beside the printed values, one row per architecture."""
    measured = attributes.drop_duplicates("arch").set_index("arch")[
        ["family", "imagenet_top1", "parameters", "depth", "mflops", "skip_connections", "branching", "conv1x1",
         "batch_norm"]]
    printed = paper_architectures[["imagenet_top1", "depth", "mflops"]].add_prefix("paper_")
    table = measured.join(printed)
    table["mflops_paper_over_measured"] = table.paper_mflops / table.mflops
    return table


def table_2():
    """Table II from the registry: the child each extraction point is taken after."""
    from .lossnets import points_table

    rows = pd.DataFrame(points_table(), columns=["arch", "point", "index", "child"])
    rows["cell"] = rows["index"].astype(str) + " " + rows.child
    return rows.pivot(index="arch", columns="point", values="cell").reindex(list(ARCHITECTURES))[list(POINTS)]
