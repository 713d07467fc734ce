"""The companion papers' results rebuilt from a collected grid, next to their printed numbers.

Paper 003 (perceptual loss for autoencoder embeddings): `params/companion_003.yaml` runs the
B4 notebook for AE, VAE, perceptual AE and perceptual VAE at each z with 003's predictor
search and decoder retraining; `dplib grid collect` writes results/companion_003.csv with
the columns procedure, variational and z. From it: accuracy_table_003 (Tables III, IV: the
best MLP's test accuracy; VI, VII: the best linear regressor's; per z and "Any") and
table_8_003 (each autoencoder type's best reconstruction L1 after decoder retraining,
relative to the best type's).

Paper 004 (feature prediction loss): `params/companion_004.yaml` runs the B4 notebook for
six procedures x z x repeats; `dplib grid collect` writes results/companion_004.csv with
the columns procedure, z, repeat, ae_epochs and ae_seconds next to the scores. From it:
table_2_004 (each procedure's accuracy at its best z, mean and spread over repeats, as
004's Table II), summary_004 (accuracy and training time per epoch per procedure and z: the
data of 004's Figures 7 and 8), relative_time_004 (I-F-FP's time per epoch over I-I-PS's,
which 004's text states) and fig_7_8 (the figures). The spread is the uncorrected sample
standard deviation, as 004 reports it.
"""

import pandas as pd

from .results import PAPER_DIR

AUTOENCODERS_003 = {("I-I-PW", False): "AE", ("I-I-PW", True): "VAE", ("I-I-PS", False): "perceptual AE",
                    ("I-I-PS", True): "perceptual VAE"}  # (procedure, variational) -> 003's name
TABLES_003 = {"III": ("stl10", "accuracy"), "IV": ("svhn", "accuracy"),  # table -> (dataset, score)
              "VI": ("stl10", "linear_accuracy"), "VII": ("svhn", "linear_accuracy")}
PROCEDURES_004 = ("I-I-PW", "I-I-PS", "I-F-FP", "F-I-PW", "F-I-PS", "F-F-FP")
FIGURE_OF_DATASET = {"stl10": "fig_7", "svhn": "fig_8"}  # 004: Fig. 7 STL-10, Fig. 8 SVHN


def _read_collected(path, columns, name):
    """A collected grid CSV, refused in one line when it lacks the columns its params file collects."""
    table = pd.read_csv(path)
    missing = set(columns) - set(table)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}: collect it with params/{name}.yaml "
                         f"(`dplib grid collect params/{name}.yaml`)")
    return table


def load_printed_003():
    """003's printed numbers (results/paper/companion_003.csv)."""
    return pd.read_csv(PAPER_DIR / "companion_003.csv", keep_default_na=False, na_values=[""], dtype={"z": str})


def load_companion_003(path):
    """One row per completed run of a collected companion_003 grid: dataset, autoencoder (003's
    name), z, and its scores accuracy, linear_accuracy and reconstruction_l1."""
    table = _read_collected(path, ("procedure", "variational", "z"), "companion_003")
    table = table[table.state == "completed"].copy()
    table["variational"] = table.variational.astype(str).str.lower() == "true"
    unknown = set(zip(table.procedure, table.variational)) - set(AUTOENCODERS_003)
    if unknown:
        raise ValueError(f"{path} has runs of {sorted(unknown)}, which 003 does not compare; it compares "
                         f"{', '.join(AUTOENCODERS_003.values())}")
    table["autoencoder"] = [AUTOENCODERS_003[k] for k in zip(table.procedure, table.variational)]
    table["z"] = table.z.astype(int)
    runs = table.pivot_table(index=["dataset", "autoencoder", "z"], columns="score", values="value", aggfunc="mean")
    return runs.reindex(columns=["accuracy", "linear_accuracy", "reconstruction_l1"]).reset_index().rename_axis(
        columns=None)


def _printed_003(printed, table):
    """The printed cells of one of 003's tables, the autoencoder's name as `autoencoder`."""
    printed = load_printed_003() if printed is None else printed
    return printed[printed.table == table].rename(columns={"procedure": "autoencoder", "value": "printed"})


def _order_z(frame):
    """Rows by z (numeric) with 003's "any" row last."""
    key = frame.z.map(lambda z: float("inf") if z == "any" else float(z))
    return frame.assign(_key=key).sort_values("_key").drop(columns="_key").reset_index(drop=True)


def accuracy_table_003(runs, table, printed=None):
    """003's Table III or IV (the best MLP's test accuracy, percent) or VI or VII (the best
    linear regressor's), one row per z and a last "any" row (the best over z: what every printed
    Any row holds), a column per autoencoder and its printed value beside it. runs=None: the
    printed table alone."""
    dataset, score = TABLES_003[table]
    frame = _printed_003(printed, table)[["z", "autoencoder", "printed"]]
    if runs is not None:
        measured = runs[runs.dataset == dataset].assign(measured=lambda r: 100 * r[score], z=lambda r: r.z.astype(str))
        best = measured.groupby("autoencoder", as_index=False).measured.max().assign(z="any")
        measured = pd.concat([measured[["z", "autoencoder", "measured"]], best])
        frame = measured.merge(frame, on=["z", "autoencoder"], how="outer")
    wide = frame.pivot(index="z", columns="autoencoder")
    names = [n for n in AUTOENCODERS_003.values() if n in set(frame.autoencoder)]
    columns = [(v, n) for n in names for v in (["measured", "printed"] if runs is not None else ["printed"])]
    wide = wide.reindex(columns=columns)
    wide.columns = [n if v == "measured" or runs is None else f"{n} (printed)" for v, n in columns]
    return _order_z(wide.reset_index()).rename_axis(columns=None)


def table_8_003(runs, printed=None):
    """003's Table VIII rebuilt: per dataset and autoencoder type, its lowest reconstruction L1
    over z after decoder retraining, and that relative to the best type's (percent: the lowest
    L1 divided by the type's), next to the printed percentage."""
    printed = _printed_003(printed, "VIII")[["dataset", "autoencoder", "printed"]]
    if runs is None:
        return printed.reset_index(drop=True)
    scored = runs.dropna(subset=["reconstruction_l1"])
    best = scored.loc[scored.groupby(["dataset", "autoencoder"]).reconstruction_l1.idxmin()]
    best = best[["dataset", "autoencoder", "z", "reconstruction_l1"]].copy()
    best["measured"] = 100 * best.groupby("dataset").reconstruction_l1.transform("min") / best.reconstruction_l1
    order = {n: i for i, n in enumerate(AUTOENCODERS_003.values())}
    table = best.merge(printed, on=["dataset", "autoencoder"], how="left")
    return table.sort_values(["dataset", "autoencoder"], key=lambda c: c.map(order) if c.name == "autoencoder"
                             else c).reset_index(drop=True)


def load_printed_004():
    """004's printed numbers (results/paper/companion_004.csv)."""
    return pd.read_csv(PAPER_DIR / "companion_004.csv", keep_default_na=False, na_values=[""])


def load_companion_004(path):
    """Completed accuracy rows of a collected companion_004 grid, one per run, with
    seconds_per_epoch (autoencoder training time / epochs)."""
    table = _read_collected(path, ("procedure", "z", "repeat", "ae_epochs", "ae_seconds"), "companion_004")
    table = table[(table.state == "completed") & (table.score == "accuracy")].copy()
    table["seconds_per_epoch"] = table.ae_seconds / table.ae_epochs
    return table[["dataset", "procedure", "z", "repeat", "value", "seconds_per_epoch"]].reset_index(drop=True)


def summary_004(runs):
    """Per dataset, procedure and z: accuracy and seconds per epoch, mean and uncorrected
    spread over the repeats (the points and bars of 004's Figures 7 and 8)."""
    grouped = runs.groupby(["dataset", "procedure", "z"])
    summary = grouped.agg(accuracy=("value", "mean"), accuracy_spread=("value", lambda v: v.std(ddof=0)),
                          seconds_per_epoch=("seconds_per_epoch", "mean"),
                          seconds_spread=("seconds_per_epoch", lambda v: v.std(ddof=0)),
                          repeats=("value", "size"))
    return summary.reset_index()


def table_2_004(runs, printed=None):
    """004's Table II rebuilt: per dataset and procedure, the accuracy at the z whose mean
    over repeats is best, as mean and spread, next to the printed value where 004 prints one."""
    summary = summary_004(runs)
    best = summary.loc[summary.groupby(["dataset", "procedure"]).accuracy.idxmax()]
    table = best[["dataset", "procedure", "z", "accuracy", "accuracy_spread", "repeats"]].reset_index(drop=True)
    printed = load_printed_004() if printed is None else printed
    printed = printed[printed.table == "II"][["dataset", "procedure", "value", "spread"]]
    printed = printed.rename(columns={"value": "printed", "spread": "printed_spread"})
    return table.merge(printed, on=["dataset", "procedure"], how="left")


def relative_time_004(runs, printed=None):
    """I-F-FP's training time per epoch over I-I-PS's, per dataset, next to what 004's text
    states ("I-F-FP taking only 55% of the time of I-I-PS" on SVHN, ...)."""
    summary = summary_004(runs)
    # a grid run with only some procedures gives NaN, not a KeyError
    per_procedure = summary.groupby(["dataset", "procedure"]).seconds_per_epoch.mean().unstack()
    per_procedure = per_procedure.reindex(columns=list(PROCEDURES_004))
    ratio = (per_procedure["I-F-FP"] / per_procedure["I-I-PS"]).rename("measured").reset_index()
    printed = load_printed_004() if printed is None else printed
    stated = printed[(printed.quantity == "relative training time")][["dataset", "procedure", "value", "note"]]
    stated = stated.rename(columns={"value": "stated", "procedure": "stated_for", "note": "sentence"})
    return ratio.merge(stated, on="dataset", how="left")


def fig_7_8(runs, dataset, printed=None):
    """004's Figure 7 (STL-10) or 8 (SVHN): test accuracy against autoencoder training time
    per epoch, one colour per procedure, one marker per z, bars for the spread over repeats;
    the text's statements about the figure as dotted lines (alone when runs is None)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    summary = summary_004(runs) if runs is not None else pd.DataFrame(columns=["dataset"])
    summary = summary[summary.dataset == dataset]
    figure, ax = plt.subplots(figsize=(6.5, 4.5))
    if len(summary):
        ax.errorbar(summary.seconds_per_epoch, summary.accuracy, xerr=summary.seconds_spread,
                    yerr=summary.accuracy_spread, fmt="none", ecolor="0.6", elinewidth=0.8, zorder=1)
        sns.scatterplot(data=summary, x="seconds_per_epoch", y="accuracy", hue="procedure", style="z",
                        hue_order=[p for p in PROCEDURES_004 if p in set(summary.procedure)], s=60, ax=ax, zorder=2)
    printed = load_printed_004() if printed is None else printed
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
