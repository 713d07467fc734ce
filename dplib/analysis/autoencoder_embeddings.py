"""Companion paper 003, *Improving Image Autoencoder Embeddings with Perceptual Loss*
(Pihlgren, Sandin, Liwicki), rebuilt from a collected grid next to its printed numbers.

`params/autoencoder_embeddings.yaml` runs the B4 notebook for AE, VAE, perceptual AE and
perceptual VAE at each z with 003's predictor search and decoder retraining; `dplib grid
collect` writes results/autoencoder_embeddings.csv with the columns procedure, variational
and z. From it: `accuracy_table` (Tables III, IV: the best MLP's test accuracy; VI, VII: the
best linear regressor's; per z and "Any") and `table_8` (each autoencoder type's best
reconstruction L1 after decoder retraining, relative to the best type's).
"""

import pandas as pd

from .scores import PAPER_DIR, read_collected
from ..errors import InputError

NAME = "autoencoder_embeddings"  # its params file, notebook, collected CSV and printed numbers

AUTOENCODERS = {("I-I-PW", False): "AE", ("I-I-PW", True): "VAE", ("I-I-PS", False): "perceptual AE",
                    ("I-I-PS", True): "perceptual VAE"}  # (procedure, variational) -> 003's name
TABLES = {"III": ("stl10", "accuracy"), "IV": ("svhn", "accuracy"),  # table -> (dataset, score)
              "VI": ("stl10", "linear_accuracy"), "VII": ("svhn", "linear_accuracy")}


def load_printed():
    """003's printed numbers (dplib/analysis/paper/autoencoder_embeddings.csv)."""
    return pd.read_csv(PAPER_DIR / f"{NAME}.csv", keep_default_na=False, na_values=[""], dtype={"z": str})


def load_runs(path):
    """One row per completed run of a collected autoencoder_embeddings grid: dataset, autoencoder (003's
    name), z, and its scores accuracy, linear_accuracy and reconstruction_l1."""
    table = read_collected(path, ("procedure", "variational", "z"), NAME)
    table = table[table.state == "completed"].copy()
    table["variational"] = table.variational.astype(str).str.lower() == "true"
    unknown = set(zip(table.procedure, table.variational)) - set(AUTOENCODERS)
    if unknown:
        raise InputError(f"{path} has runs of {sorted(unknown)}, which 003 does not compare; it compares "
                         f"{', '.join(AUTOENCODERS.values())}")
    table["autoencoder"] = [AUTOENCODERS[k] for k in zip(table.procedure, table.variational)]
    table["z"] = table.z.astype(int)
    runs = table.pivot_table(index=["dataset", "autoencoder", "z"], columns="score", values="value", aggfunc="mean")
    return runs.reindex(columns=["accuracy", "linear_accuracy", "reconstruction_l1"]).reset_index().rename_axis(
        columns=None)


def _printed(printed, table):
    """The printed cells of one of 003's tables, the autoencoder's name as `autoencoder`."""
    printed = load_printed() if printed is None else printed
    return printed[printed.table == table].rename(columns={"procedure": "autoencoder", "value": "printed"})


def _order_z(frame):
    """Rows by z (numeric) with 003's "any" row last."""
    key = frame.z.map(lambda z: float("inf") if z == "any" else float(z))
    return frame.assign(_key=key).sort_values("_key").drop(columns="_key").reset_index(drop=True)


def accuracy_table(runs, table, printed=None):
    """003's Table III or IV (the best MLP's test accuracy, percent) or VI or VII (the best
    linear regressor's), one row per z and a last "any" row (the best over z: what every printed
    Any row holds), a column per autoencoder and its printed value beside it. runs=None: the
    printed table alone."""
    dataset, score = TABLES[table]
    frame = _printed(printed, table)[["z", "autoencoder", "printed"]]
    if runs is not None:
        measured = runs[runs.dataset == dataset].assign(measured=lambda r: 100 * r[score], z=lambda r: r.z.astype(str))
        best = measured.groupby("autoencoder", as_index=False).measured.max().assign(z="any")
        measured = pd.concat([measured[["z", "autoencoder", "measured"]], best])
        frame = measured.merge(frame, on=["z", "autoencoder"], how="outer")
    wide = frame.pivot(index="z", columns="autoencoder")
    names = [n for n in AUTOENCODERS.values() if n in set(frame.autoencoder)]
    columns = [(v, n) for n in names for v in (["measured", "printed"] if runs is not None else ["printed"])]
    wide = wide.reindex(columns=columns)
    wide.columns = [n if v == "measured" or runs is None else f"{n} (printed)" for v, n in columns]
    return _order_z(wide.reset_index()).rename_axis(columns=None)


def table_8(runs, printed=None):
    """003's Table VIII rebuilt: per dataset and autoencoder type, its lowest reconstruction L1
    over z after decoder retraining, and that relative to the best type's (percent: the lowest
    L1 divided by the type's), next to the printed percentage."""
    printed = _printed(printed, "VIII")[["dataset", "autoencoder", "printed"]]
    if runs is None:
        return printed.reset_index(drop=True)
    scored = runs.dropna(subset=["reconstruction_l1"])
    best = scored.loc[scored.groupby(["dataset", "autoencoder"]).reconstruction_l1.idxmin()]
    best = best[["dataset", "autoencoder", "z", "reconstruction_l1"]].copy()
    best["measured"] = 100 * best.groupby("dataset").reconstruction_l1.transform("min") / best.reconstruction_l1
    order = {n: i for i, n in enumerate(AUTOENCODERS.values())}
    table = best.merge(printed, on=["dataset", "autoencoder"], how="left")
    return table.sort_values(["dataset", "autoencoder"], key=lambda c: c.map(order) if c.name == "autoencoder"
                             else c).reset_index(drop=True)
