"""The paper's figures, rebuilt from any tidy score table: Fig. 2 (each score per point),
Fig. 3 (SVHN / STL-10 by point), Fig. 4 (2AFC against FLOPs), Fig. 5 (MRD quality against
ImageNet top-1), the attribute correlations as a heat map, and any attribute against any
score (`scatter`, the explorer's plot).

Statistical figures are drawn with seaborn over tidy tables; nothing random is drawn (no
jitter), so rebuilding a figure from the same scores gives the same file.
"""

from pathlib import Path

import numpy as np
from scipy import stats

from ..benchmarks import all_benchmarks, direction
from ..lossnets import POINTS
from .tables import POINT_LETTERS, _with_keys, architecture_order, best_per_architecture


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _sns():
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return sns


def fig_2_keys():
    """Each benchmark's headline score (its record's), in the records' order: the paper's Fig. 2
    draws the first four; a fifth benchmark's is drawn beside them when its scores are there."""
    return tuple(record.headline_key() for record in all_benchmarks().values())


FIG_2_KEYS = fig_2_keys()[:4]  # the paper's: b1 2afc all, b2 ssim bsd100 x4, b3 quality mrd, b4 accuracy stl10


def titled(key, scores):
    """A score key as a figure names it, saying so when lower is better."""
    row = scores[scores.key == key].iloc[0]
    return key + (" (lower is better)" if direction(row.benchmark, row.score) == "lower" else "")


def fig_2(scores, keys=None):
    """Fig. 2: each score per extraction point (earliest to latest), one line per architecture;
    keys default to every benchmark's headline score (`fig_2_keys`) present in `scores`."""
    plt, sns = _plt(), _sns()
    scores = _with_keys(scores)
    keys = [k for k in (keys or fig_2_keys()) if k in set(scores.key)]
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
        axis.set(title=titled(key, scores), xlabel="extraction point", ylabel="score" if i == 0 else "")
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


def fig_proxy(correlations, choice):
    """Which task predicts which (dplib.analysis.proxy): Spearman's rho of every pair of
    scores over the loss networks (left), and the regret of choosing by the cheap proxy, as a
    share of each target's range, against how many of its top networks are then run the
    expensive way (right)."""
    from .proxy import correlation_matrix

    plt, sns = _plt(), _sns()
    matrix = correlation_matrix(correlations)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.2, 1]})
    sns.heatmap(matrix, vmin=-1, vmax=1, center=0, cmap="vlag", annot=True, fmt=".2f", annot_kws={"size": 7},
                cbar_kws={"label": "Spearman rho"}, ax=left)
    left.set(title=f"rank correlation over {correlations.n.max()} loss networks", xlabel="", ylabel="")
    sns.lineplot(choice, x="k", y="regret_share_of_range", hue="target", marker="o", ax=right)
    right.set(title=f"choosing by {choice.proxy.iloc[0]}: regret", xlabel="top-k of the proxy run the expensive way",
              ylabel="best minus best of the top-k, share of range", ylim=(0, None))
    sns.move_legend(right, "best", fontsize=7, title="")
    figure.tight_layout()
    return figure


def fig_agreement(correlations, proxies=None):
    """Benchmark 1 beyond BAPPS (dplib.analysis.agreement): Spearman's rho of every pair of
    human-judgement datasets over the loss networks (left) and, when the training benchmarks'
    scores are there, of each dataset with each of their headline scores (right)."""
    from .proxy import correlation_matrix

    plt, sns = _plt(), _sns()
    both = proxies is not None and not proxies.empty
    figure, axes = plt.subplots(1, 2 if both else 1, figsize=(12 if both else 6, 5), squeeze=False)
    matrix = correlation_matrix(correlations.rename(columns={"dataset_a": "score_a", "dataset_b": "score_b"}))
    sns.heatmap(matrix, vmin=-1, vmax=1, center=0, cmap="vlag", annot=True, fmt=".2f", annot_kws={"size": 8},
                cbar_kws={"label": "Spearman rho"}, ax=axes[0][0])
    axes[0][0].set(title=f"datasets' agreement over {correlations.n.max()} loss networks", xlabel="", ylabel="")
    if both:
        table = proxies.pivot(index="proxy", columns="target", values="spearman_rho")
        sns.heatmap(table, vmin=-1, vmax=1, center=0, cmap="vlag", annot=True, fmt=".2f", annot_kws={"size": 8},
                    cbar_kws={"label": "Spearman rho"}, ax=axes[0][1])
        axes[0][1].set(title="each dataset as a proxy for the training benchmarks", xlabel="", ylabel="")
    figure.tight_layout()
    return figure


def fig_curves(curves, by=None):
    """A grid's training curves side by side (the CSV of `dplib grid collect --curves`): one panel
    per value of `by` (default: the first axis column after run_id and state, e.g. arch), one line
    per run, the mean training loss per logged interval against the step; validation scores, when
    logged, in a second row."""
    plt, sns = _plt(), _sns()
    axes_columns = [c for c in curves.columns[2:] if c not in ("step", "epoch", "loss", "lr", "samples_per_second",
                                                               "validation", "phase", "calibration")]
    by = by or (axes_columns[0] if axes_columns else "run_id")
    panels = list(dict.fromkeys(curves[by]))
    validated = "validation" in curves and curves.validation.notna().any()
    figure, axes = plt.subplots(2 if validated else 1, len(panels), figsize=(4 * len(panels), 6 if validated else 3.2),
                                squeeze=False, sharex="col")
    for i, panel in enumerate(panels):
        table = curves[curves[by] == panel]
        sns.lineplot(table, x="step", y="loss", hue="run_id", ax=axes[0][i], legend=False, errorbar=None)
        axes[0][i].set(title=f"{by} {panel}", ylabel="training loss" if i == 0 else "")
        if validated:
            sns.lineplot(table.dropna(subset=["validation"]), x="step", y="validation", hue="run_id", marker="o",
                         ax=axes[1][i], legend=False, errorbar=None)
            axes[1][i].set(ylabel="validation" if i == 0 else "")
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
    axis.set(xlabel=attribute, ylabel=titled(key, scores) if key in set(scores.key) else key)
    if axis.get_legend():
        sns.move_legend(axis, "best", fontsize=7, title=color_by)
    figure.tight_layout()
    return figure


def fig_calibrated(table, score="2afc"):
    """Benchmark 1's calibrated metrics against the uncalibrated one (tables.calibrated_against_baseline):
    one dot per network and point, the baseline's score across, each variant's up; above the
    diagonal, calibrating helped."""
    plt, sns = _plt(), _sns()
    columns = table[score]
    long = (columns.drop(columns="baseline").stack().rename("calibrated").reset_index()
            .merge(columns["baseline"].rename("baseline").reset_index(), on=["arch", "point"]))
    figure, axis = plt.subplots(figsize=(5, 4.5))
    sns.scatterplot(long, x="baseline", y="calibrated", hue="point", style="variant", ax=axis)
    low, high = np.nanmin(long[["baseline", "calibrated"]].values), np.nanmax(long[["baseline", "calibrated"]].values)
    axis.plot([low, high], [low, high], color="0.6", linewidth=0.8, zorder=0)
    axis.set(xlabel=f"B1 {score}, baseline (Eq. 1)", ylabel=f"B1 {score}, calibrated",
             title=f"{len(columns)} loss networks: calibrated against uncalibrated")
    figure.tight_layout()
    return figure


def figure_png(figure):
    """A figure as PNG bytes (no timestamp), and the figure closed."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    _plt().close(figure)
    return buffer.getvalue()



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


