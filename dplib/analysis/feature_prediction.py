"""Companion paper 004, *Pretraining Image Encoders without Reconstruction via Feature
Prediction Loss* (Pihlgren, Sandin, Liwicki), rebuilt from a collected grid next to its
printed numbers.

`params/feature_prediction.yaml` runs the B4 notebook for the six procedures x z x repeats;
`dplib grid collect` writes results/feature_prediction.csv with the columns procedure, z,
repeat, ae_epochs and ae_seconds next to the scores. From it: `table_2` (each procedure's
accuracy at its best z, mean and spread over repeats, as 004's Table II), `summary_table` (accuracy
and training time per epoch per procedure and z: the data of 004's Figures 7 and 8),
`relative_time` (I-F-FP's time per epoch over I-I-PS's, which 004's text states) and
`fig_7_8` (the figures). The spread is the uncorrected sample standard deviation, as 004
reports it.
"""

import pandas as pd

from ..benchmarks.b4 import PROCEDURES
from .scores import PAPER_DIR, read_collected

NAME = "feature_prediction"  # its params file, notebook, collected CSV and printed numbers
FIGURE_OF_DATASET = {"stl10": "fig_7", "svhn": "fig_8"}  # 004: Fig. 7 STL-10, Fig. 8 SVHN


def load_printed():
    """004's printed numbers (dplib/analysis/paper/feature_prediction.csv)."""
    return pd.read_csv(PAPER_DIR / f"{NAME}.csv", keep_default_na=False, na_values=[""])


def load_runs(path):
    """Completed accuracy rows of a collected feature_prediction grid, one per run, with
    seconds_per_epoch (autoencoder training time / epochs)."""
    table = read_collected(path, ("procedure", "z", "repeat", "ae_epochs", "ae_seconds"), NAME)
    table = table[(table.state == "completed") & (table.score == "accuracy")].copy()
    table["seconds_per_epoch"] = table.ae_seconds / table.ae_epochs
    return table[["dataset", "procedure", "z", "repeat", "value", "seconds_per_epoch"]].reset_index(drop=True)


def summary_table(runs):
    """Per dataset, procedure and z: accuracy and seconds per epoch, mean and uncorrected
    spread over the repeats (the points and bars of 004's Figures 7 and 8)."""
    grouped = runs.groupby(["dataset", "procedure", "z"])
    summary = grouped.agg(accuracy=("value", "mean"), accuracy_spread=("value", lambda v: v.std(ddof=0)),
                          seconds_per_epoch=("seconds_per_epoch", "mean"),
                          seconds_spread=("seconds_per_epoch", lambda v: v.std(ddof=0)),
                          repeats=("value", "size"))
    return summary.reset_index()


def table_2(runs, printed=None):
    """004's Table II rebuilt: per dataset and procedure, the accuracy at the z whose mean
    over repeats is best, as mean and spread, next to the printed value where 004 prints one."""
    summary = summary_table(runs)
    best = summary.loc[summary.groupby(["dataset", "procedure"]).accuracy.idxmax()]
    table = best[["dataset", "procedure", "z", "accuracy", "accuracy_spread", "repeats"]].reset_index(drop=True)
    printed = load_printed() if printed is None else printed
    printed = printed[printed.table == "II"][["dataset", "procedure", "value", "spread"]]
    printed = printed.rename(columns={"value": "printed", "spread": "printed_spread"})
    return table.merge(printed, on=["dataset", "procedure"], how="left")


def relative_time(runs, printed=None):
    """I-F-FP's training time per epoch over I-I-PS's, per dataset, next to what 004's text
    states ("I-F-FP taking only 55% of the time of I-I-PS" on SVHN, ...)."""
    summary = summary_table(runs)
    # a grid run with only some procedures gives NaN, not a KeyError
    per_procedure = summary.groupby(["dataset", "procedure"]).seconds_per_epoch.mean().unstack()
    per_procedure = per_procedure.reindex(columns=list(PROCEDURES))
    ratio = (per_procedure["I-F-FP"] / per_procedure["I-I-PS"]).rename("measured").reset_index()
    printed = load_printed() if printed is None else printed
    stated = printed[(printed.quantity == "relative training time")][["dataset", "procedure", "value", "note"]]
    stated = stated.rename(columns={"value": "stated", "procedure": "stated_for", "note": "sentence"})
    return ratio.merge(stated, on="dataset", how="left")


def fig_7_8(runs, dataset, printed=None):
    """004's Figure 7 (STL-10) or 8 (SVHN): test accuracy against autoencoder training time
    per epoch, one colour per procedure, one marker per z, bars for the spread over repeats;
    the text's statements about the figure as dotted lines (alone when runs is None)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    summary = summary_table(runs) if runs is not None else pd.DataFrame(columns=["dataset"])
    summary = summary[summary.dataset == dataset]
    figure, ax = plt.subplots(figsize=(6.5, 4.5))
    if len(summary):
        ax.errorbar(summary.seconds_per_epoch, summary.accuracy, xerr=summary.seconds_spread,
                    yerr=summary.accuracy_spread, fmt="none", ecolor="0.6", elinewidth=0.8, zorder=1)
        sns.scatterplot(data=summary, x="seconds_per_epoch", y="accuracy", hue="procedure", style="z",
                        hue_order=[p for p in PROCEDURES if p in set(summary.procedure)], s=60, ax=ax, zorder=2)
    printed = load_printed() if printed is None else printed
    statements = printed[(printed.dataset == dataset) & (printed.quantity == "accuracy")
                         & printed.table.str.startswith("Fig.")]
    for _, statement in statements.iterrows():
        ax.axhline(statement.value, color="0.3", linestyle=":", linewidth=0.8)
        ax.annotate(f"004: {statement.procedure} {statement.relation} {statement.value:.2f}",
                    (1.0, statement.value), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=6)
    ax.set_xlabel("autoencoder training time per epoch (s)")
    ax.set_ylabel(f"test accuracy ({dataset})")
    ax.set_title(f"004 {FIGURE_OF_DATASET[dataset].replace('_', '. ').title()}: {dataset}")
    if len(summary):
        ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure
