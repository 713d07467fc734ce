"""The paper's tables, rebuilt from any tidy score table (the paper's or a grid's):
Table III (`rank_table`), Table IV (`best_points`), the attribute correlations behind its
findings, the printed score tables V-XI (`score_table`), Tables I and II.

Which way a score is better is its benchmark record's (dplib.benchmarks.Score.direction):
every score of the paper is better when higher, so there "best" is the maximum; a lower-is-better
score (b4's reconstruction_l1, b5's perceptual distance) is ranked and chosen the other way.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..benchmarks import benchmark, benchmark_order, direction
from ..benchmarks.record import KEY, score_key  # noqa: F401  (score_key: this module's API too)
from ..lossnets import ARCHITECTURES, POINTS
from ..errors import InputError

POINT_LETTERS = {"early": "E", "semi_early": "S", "mid": "M", "late": "L"}


def architecture_order(names):
    """The paper's architectures in Table II's order, then any others (registered networks,
    timm models) sorted: the order of every table and figure."""
    names = set(names)
    return [a for a in ARCHITECTURES if a in names] + sorted(names - set(ARCHITECTURES))


def mark_paper(table):
    """A table indexed by architecture, with a column saying which rows are the paper's
    networks (when own runs add registered ones)."""
    return table.assign(in_paper=[a in ARCHITECTURES for a in table.index])


def _with_keys(scores):
    scores = scores.copy()
    scores["key"] = [score_key(r) for r in scores[KEY].to_dict("records")]
    return scores


def goodness(scores):
    """The values signed so that higher is better: value, or -value for a lower-is-better score."""
    signs = {pair: (1.0 if direction(*pair) == "higher" else -1.0)
             for pair in set(zip(scores.benchmark, scores.score))}
    return scores.value * [signs[pair] for pair in zip(scores.benchmark, scores.score)]


def best_per_architecture(scores):
    """For every score and architecture, the best extraction point and its value."""
    scores = _with_keys(scores)
    # ties: the earliest point wins (point order), so the result does not depend on row order
    scores["point_order"] = scores.point.map({p: i for i, p in enumerate(POINTS)})
    scores["goodness"] = goodness(scores)
    ordered = scores.sort_values(["key", "arch", "goodness", "point_order"], ascending=[True, True, False, True])
    best = ordered.groupby(["key", "arch"], sort=False).head(1).drop(columns=["point_order", "goodness"])
    return best.reset_index(drop=True)


def paper_scores_only(scores):
    """The rows of the scores the paper reports (Tables V-XI): our runs add per-subset
    2AFC / JND and slack-3 delineation scores, which Table III must not average in. A benchmark
    beyond the paper's (its record feeds no paper item: b5, one's own) keeps all its scores."""
    keys = pd.Series([score_key(r) for r in scores[KEY].to_dict("records")], index=scores.index)
    beyond = {name for name in set(scores.benchmark) if not (benchmark(name) and benchmark(name).paper_items)}
    own = scores.benchmark.isin(beyond)
    kept = own | keys.map(lambda k: any(holds(k) for holds in PAPER_TABLES.values()))
    _say_what_is_left_out(scores[~kept], scores[kept])
    return scores[kept]


class ScoreLeftOut(UserWarning):
    """A score a benchmark's record declares reached no table of the paper: said, not dropped silently."""


def _say_what_is_left_out(left, kept):
    """Warn for each declared score of a paper benchmark none of whose rows a paper table holds
    (a score added to B2, say, or B1's beyond-BAPPS correlations): the paper's tables cannot show
    it; rank_table(paper_scores=False), best_points and the figures' keys can."""
    import warnings

    for (name, score), _ in left.groupby(["benchmark", "score"]):
        record = benchmark(name)
        if record and record.score(score) and not ((kept.benchmark == name) & (kept.score == score)).any():
            warnings.warn(f"{name}'s score {score!r} is in none of the paper's tables (Tables III-XI), which leave "
                          "it out; rank_table(scores, paper_scores=False) ranks it with the rest", ScoreLeftOut,
                          stacklevel=3)


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
    best["rank"] = goodness(best).groupby(best.key).rank(ascending=False, method="average")
    table = best.pivot_table(index="arch", columns="benchmark", values="rank", aggfunc="mean")
    table = table.reindex(columns=benchmark_order(table.columns))
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
    scores["goodness"] = goodness(scores)  # the best is the highest goodness, whichever way the score goes
    rows = []
    for key, group in scores.groupby("key", sort=False):
        sign = 1.0 if direction(group.benchmark.iloc[0], group.score.iloc[0]) == "higher" else -1.0
        by_arch = group.groupby("arch").goodness
        best_values = by_arch.max().reindex(architecture_order(by_arch.groups))  # ties: paper order
        best_arch, worst_arch = best_values.idxmax(), best_values.idxmin()
        rows.append(dict(score=key, best_architecture=best_arch, its_worst_point=sign * by_arch.min()[best_arch],
                         worst_architecture=worst_arch, its_best_point=sign * by_arch.max()[worst_arch],
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


# ----- tables I and II, and where the scores come from ---------------------------------------

def load_scores(results="paper", variant="baseline"):
    """"paper" -> the paper's Tables V-XI; a path -> a grid's collected results (a CSV or a
    folder), Benchmark 1's rows those of `variant` (scores.load_results)."""
    from .scores import load_paper_scores, load_results

    if str(results) == "paper":
        return load_paper_scores()
    path = Path(results)
    if variant not in (None, "baseline") and path.is_dir():  # the calibrated B1 grid's own CSV, the rest as usual
        rest = load_results(path)
        return pd.concat([rest[rest.benchmark != "b1"], load_results(path / "b1_calibrated.csv", variant)],
                         ignore_index=True)
    return load_results(path, variant)


def by_pretraining(scores):
    """A pretraining grid's scores side by side (params/grid_pretraining.yaml; the collected
    results have a `weights` column): rows (score key, arch, point), one column per
    pretraining, with its ImageNet-1K top-1 and data in dplib.attributes.pretraining. Each
    architecture's rows only where it ran with more than one pretraining."""
    if "weights" not in scores:
        raise InputError("these scores have no weights column: collect a grid run with "
                         "--grid params/grid_pretraining.yaml")
    scores = _with_keys(scores).assign(weights=lambda t: t.weights.fillna("random").astype(str))
    table = scores.pivot_table(index=["key", "arch", "point"], columns="weights", values="value")
    several = table.notna().sum(axis=1) > 1
    return table[several]


def load_beyond_bapps(results, name="b1_datasets"):
    """Benchmark 1's scores on the datasets beyond BAPPS: a results folder's b1_datasets.csv
    (params/b1_datasets.yaml's collected grid, read by its own analysis as b1_calibrated.csv is),
    or such a CSV itself; empty for "paper" (the paper scored BAPPS alone) or when there is none."""
    from .scores import load_results

    path = Path(results) if str(results) != "paper" else None
    csv = path / f"{name}.csv" if path is not None and path.is_dir() else path
    if csv is None or not csv.is_file() or csv.stem != name:
        return pd.DataFrame(columns=["benchmark", "score", "dataset", "scale", "arch", "point", "value"])
    return load_results(csv, variant=None)


def calibrated_against_baseline(results, scores=("2afc", "jnd_map")):
    """Benchmark 1's uncalibrated metric (Eq. 1, the paper's) beside its calibrated variants,
    per network and point: rows (arch, point), columns (score, variant), the "all" cells
    (the 2AFC mean over subsets, JND pooled). The baseline comes from `results` (the paper's
    scores for "paper"); the calibrated ones from a results folder's b1_calibrated.csv (or a
    CSV with a variant column). Empty when there are none."""
    from .scores import load_results

    path = Path(results) if str(results) != "paper" else None
    baseline = load_scores(results).assign(variant="baseline")
    calibrated_csv = path / "b1_calibrated.csv" if path is not None and path.is_dir() else path
    calibrated = pd.DataFrame(columns=list(baseline.columns))
    if calibrated_csv is not None and calibrated_csv.is_file():
        calibrated = load_results(calibrated_csv, variant=None)
        if "variant" not in calibrated:  # a CSV of uncalibrated runs only
            return pd.DataFrame()
        calibrated = calibrated[calibrated.variant.fillna("baseline") != "baseline"]
    both = pd.concat([baseline, calibrated], ignore_index=True)
    both = both[(both.benchmark == "b1") & (both.dataset == "all") & both.score.isin(scores)]
    if calibrated.empty:
        return pd.DataFrame()
    table = both.pivot_table(index=["arch", "point"], columns=["score", "variant"], values="value")
    table = table[table.xs("baseline", axis=1, level="variant").notna().any(axis=1) &
                  table.drop(columns="baseline", level="variant").notna().any(axis=1)]
    order = {arch: i for i, arch in enumerate(architecture_order(table.index.get_level_values("arch")))}
    return table.sort_index(key=lambda index: index.map(order) if index.name == "arch" else
                            index.map({p: i for i, p in enumerate(POINT_LETTERS)}))


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
    from ..lossnets import points_table

    rows = pd.DataFrame(points_table(), columns=["arch", "point", "index", "child"])
    rows["cell"] = rows["index"].astype(str) + " " + rows.child
    return rows.pivot(index="arch", columns="point", values="cell").reindex(list(ARCHITECTURES))[list(POINTS)]
