"""Benchmark 1 beyond BAPPS: do the human-judgement datasets rank the loss networks alike, does a
calibration keep its advantage on each, and which dataset best predicts the training benchmarks?

From a collected grid of params/b1_datasets.yaml (results/b1_datasets.csv); the paper's own
scores hold BAPPS alone. Each dataset's headline score (HEADLINES: BAPPS's and NIGHTS's 2AFC,
the opinion-score datasets' SRCC) per loss network, then:
- `agreement`: the rank correlation of every pair of datasets over the loss networks both have
  (Spearman and Kendall with bootstrap intervals: dplib.analysis.proxy.rank_correlations);
- `as_proxies`: each dataset as a candidate proxy for Benchmarks 2-4's headline scores (the
  proxy analysis's correlations and choice, one dataset at a time);
- `calibrated_per_dataset`: the uncalibrated metric beside its calibrated variants, per dataset.
"""

import pandas as pd

from . import proxy

HEADLINES = {"bapps": ("2afc", "all"), "kadid10k": ("srcc", "kadid10k"), "tid2013": ("srcc", "tid2013"),
             "pipal": ("srcc", "pipal"), "nights": ("2afc", "nights")}
TARGETS = tuple(k for k in proxy.KEYS if not k.startswith("b1 "))  # the training benchmarks' headline scores


def dataset_table(scores):
    """(loss network x dataset) table of each dataset's headline score (higher is better in all),
    from Benchmark 1's rows of `scores`; a dataset without rows is left out."""
    b1 = scores[scores.benchmark == "b1"]
    columns = {}
    for name, (score, dataset) in HEADLINES.items():
        rows = b1[(b1.score == score) & (b1.dataset == dataset)]
        if len(rows):
            columns[name] = rows.groupby(["arch", "point"]).value.mean()
    return pd.DataFrame(columns)


def agreement(scores, resamples=2000, level=0.95, seed=0):
    """One row per pair of datasets: n loss networks, Spearman's rho and Kendall's tau with
    percentile bootstrap intervals over the networks (seeded)."""
    return proxy.rank_correlations(dataset_table(scores), resamples, level, seed).rename(
        columns={"score_a": "dataset_a", "score_b": "dataset_b"})


def as_proxies(b1_scores, training_scores, resamples=2000, level=0.95, seed=0, ks=(1, 3, 5, 10)):
    """Each human-judgement dataset as a proxy for each training benchmark's headline score
    (TARGETS present in `training_scores`): (correlations, choice), one row per dataset and
    target, as dplib.analysis.proxy computes them for Benchmark 1's 2AFC."""
    datasets = dataset_table(b1_scores)
    targets = proxy.wide(training_scores, keys=TARGETS)
    both = datasets.join(targets, how="inner")
    correlations, choices = [], []
    if len(both) < 3:  # no ranking to compare over fewer than three loss networks
        return pd.DataFrame(), pd.DataFrame()
    for name in datasets.columns:
        for target in targets.columns:
            pair = proxy.rank_correlations(both[[name, target]], resamples, level, seed)
            correlations.append(pair.rename(columns={"score_a": "proxy", "score_b": "target"}))
        choices.append(proxy.proxy_choice(both[[name, *targets.columns]], proxy=name, ks=ks))
    return (pd.concat(correlations, ignore_index=True) if correlations else pd.DataFrame(),
            pd.concat(choices, ignore_index=True) if choices else pd.DataFrame())


def calibrated_per_dataset(baseline_scores, calibrated_scores):
    """Rows (arch, point), columns (dataset, variant): each dataset's headline score of the
    uncalibrated metric ("baseline") and of each calibrated variant (a `variant` column of the
    calibrated runs' rows, as results/b1_calibrated.csv collects it)."""
    parts = [dataset_table(baseline_scores).stack().rename("value").reset_index().assign(variant="baseline")]
    for variant, rows in calibrated_scores.groupby("variant"):
        if variant != "baseline":
            parts.append(dataset_table(rows).stack().rename("value").reset_index().assign(variant=variant))
    long = pd.concat(parts, ignore_index=True).rename(columns={"level_2": "dataset"})
    return long.pivot_table(index=["arch", "point"], columns=["dataset", "variant"], values="value")
