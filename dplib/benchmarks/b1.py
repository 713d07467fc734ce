"""Benchmark 1: each loss network as a perceptual similarity metric (Eq. 1) on BAPPS.

One forward pass per patch serves every requested extraction point, and the reference
patch of a 2AFC triplet is passed once for both of its distances. Distances are saved
per subset in out_dir/distances/ as they are computed, so a rerun reuses them.

On a CPU the patches of a batch (3 x batch_size for triplets) go through the network in
chunks whose largest activation fits CHUNK_BYTES: VGG-16's early maps take 1 MB per 64 px
patch, and 150 of them at once spill out of the caches (bench/b1.py measures it).
"""

import math
import shutil
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from ..progress import tqdm

from ..atomic import atomic_write
from ..device import autocast, autocast_dtype
from ..data import bapps, iqa, nights
from ..data.bapps import JNDDataset, TwoAFCDataset
from ..losses import perceptual_distance, unit_normalize
from ..metrics_log import METRICS
from ..metrics import jnd_map, krcc, plcc, srcc, two_afc
from . import Benchmark, Score
from .record import score_row

BENCHMARK = Benchmark(
    name="b1", title="perceptual similarity", module="dplib.benchmarks.b1",
    notebook="notebooks/b1_perceptual_similarity.ipynb", params="params/b1.yaml",
    datasets=("bapps",) + iqa.NAMES + ("nights",),
    scores=(Score("2afc", "higher", bapps.TWO_AFC_SUBSETS + ("all", "nights"),
                  label="2AFC score, agreement with human judges (BAPPS's subsets; NIGHTS beyond the paper)"),
            Score("jnd_map", "higher", bapps.JND_SUBSETS + ("all",), label="JND mean average precision"),
            *(Score(name, "higher", iqa.NAMES, label=f"{label} of -distance with the opinion scores", optional=True)
              for name, label in (("srcc", "Spearman's rank correlation"), ("krcc", "Kendall's tau-b"),
                                  ("plcc", "Pearson's correlation after the VQEG logistic fit")))),
    paper_items=("table_3", "table_4", "table_5", "fig_2"), headline="b1 2afc all")


CHUNK_BYTES = 8 * 2**20  # the largest activation of a chunk, on a CPU (bench/b1.py: 8 MB was best or close)


def images_per_chunk(network, size, budget=CHUNK_BYTES):
    """How many size x size patches a CPU forward takes at once: the budget over the
    largest activation of one patch (measured once per network and size)."""
    cache = network.__dict__.setdefault("_chunk_images", {})
    if size not in cache:
        largest = []
        hooks = [m.register_forward_hook(lambda m, i, o: largest.append(o.numel() * o.element_size()
                                                                         if torch.is_tensor(o) else 0))
                 for m in network.modules() if not list(m.children())]
        try:
            with torch.no_grad():
                network(torch.zeros(1, 3, size, size, device=next(network.buffers()).device))
        finally:
            for hook in hooks:
                hook.remove()
        cache[size] = max(1, budget // max(largest + [1]))
    return cache[size]


def _features(network, batch, device, channels_last, dtype):
    batch = batch.to(device, non_blocking=True)                            # (k*N, 3, 64, 64)
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    if dtype is None:
        return network(batch)
    with autocast(device, dtype):
        features = network(batch)
    if all(torch.isfinite(f).all() for f in features.values()):
        return features
    return network(batch)  # float16 ends at 65504: a batch whose features overflowed is done again in float32


def _distance(a, b, weights):
    """Eq. 1 between unit-normalised features (N, C, h, w) -> (N,); with `weights` (C,), each
    channel's squared difference weighted (a calibrated metric's 1x1 layer, dplib.similarity)."""
    if weights is None:
        return perceptual_distance(a, b, normalized=True)
    return torch.nn.functional.conv2d((a - b).pow(2), weights.view(1, -1, 1, 1).to(a)).mean(dim=(1, 2, 3))


@torch.no_grad()
def pair_distances(network, dataset, first, second, reference=None, batch_size=50, device="cpu", num_workers=0,
                   channels_last=False, autocast=False, description="", progress=True, channel_weights=None):
    """Eq. 1 distances per point for every item of `dataset`.

    With `reference` (2AFC), returns {point: (d(ref, first), d(ref, second))}, the
    reference's features computed once per triplet; without (JND), {point: d(first, second)}.
    Each array has one distance per item, as float64. `autocast`: see autocast_dtype.
    channel_weights: {point: (C,)} of a calibrated metric (None: Eq. 1's equal weights).
    """
    dtype = autocast_dtype(autocast)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        pin_memory=str(device).startswith("cuda"))
    out = {p: ([], []) for p in network.points}
    names = ([reference] if reference else []) + [first, second]
    for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
        stacked = torch.cat([batch[n] for n in names])                     # (k*N, 3, 64, 64): one pass
        chunk = len(stacked) if str(device).startswith("cuda") else images_per_chunk(network, stacked.shape[-1])
        normalized = {p: [] for p in network.points}
        for part in stacked.split(chunk):
            for point, f in _features(network, part, device, channels_last, dtype).items():
                normalized[point].append(unit_normalize(f.float()))       # normalised once, ref included
        for point, pieces in normalized.items():
            parts = torch.cat(pieces).chunk(len(names))
            for i, other in enumerate(parts[1:]):
                weights = None if channel_weights is None else channel_weights[point]
                out[point][i].append(_distance(parts[0], other, weights).cpu())
    if reference:
        return {p: (torch.cat(a).double().numpy(), torch.cat(b).double().numpy()) for p, (a, b) in out.items()}
    return {p: torch.cat(a).double().numpy() for p, (a, _) in out.items()}


def _save_npz(path, arrays):
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def _load_cached(path, points, count):
    if not path.is_file():
        return None
    try:
        cached = dict(np.load(path))
    except (OSError, ValueError):
        return None  # a half-written file from a killed run: compute again
    if all(k in cached and len(cached[k]) == count for k in points):
        return cached
    return None


def evaluate(network, data_root, out_dir, subsets, jnd_subsets, limit=None, **loader_options):
    """2AFC distances for every subset and JND distances, each cached in out_dir/distances/.

    Returns (two_afc: {subset: {point: (d0, d1), "judge": j}}, jnd: {subset: {point: d, "same": s}}).
    """
    autocast_dtype(loader_options.get("autocast", False))  # a bad value stops here, before any work
    cache = Path(out_dir) / "distances"
    two_afc_distances, jnd_distances = {}, {}
    # Open every dataset first: missing or mismatched files stop the run before any work.
    datasets = {("2afc", s): TwoAFCDataset(data_root, s, limit=limit) for s in subsets}
    datasets.update({("jnd", s): JNDDataset(data_root, s, limit=limit) for s in jnd_subsets})
    for (kind, subset), dataset in datasets.items():
        path = cache / f"{kind}_{subset}.npz"
        points = [f"{p}_d0" for p in network.points] if kind == "2afc" else list(network.points)
        cached = _load_cached(path, points, len(dataset))
        if cached is None:
            if kind == "2afc":
                d = pair_distances(network, dataset, "p0", "p1", reference="ref", description=f"2afc {subset}",
                                   **loader_options)
                cached = {f"{p}_d0": v[0] for p, v in d.items()} | {f"{p}_d1": v[1] for p, v in d.items()}
                cached["judge"] = dataset.judge
            else:
                cached = pair_distances(network, dataset, "p0", "p1", description=f"jnd {subset}", **loader_options)
                cached["same"] = dataset.same
            _save_npz(path, cached)
        if kind == "2afc":
            two_afc_distances[subset] = cached
        else:
            jnd_distances[subset] = cached
    return two_afc_distances, jnd_distances


# ----- Benchmark 1 beyond BAPPS: the human-judgement datasets the field scores on ---------------

BEYOND = iqa.NAMES + ("nights",)   # scored besides BAPPS when `datasets` names them
DATASETS = ("bapps",) + BEYOND
PATCH_PIXELS = bapps.PATCH ** 2     # a batch of whole images holds about as many pixels as batch_size patches


def dataset_roots(parameters):
    """{dataset: its folder} of the datasets beyond BAPPS a run scores (`<name>_root`)."""
    from ..notebook import resolve

    return {name: resolve(parameters[f"{name}_root"]) for name in parameters["datasets"] if name != "bapps"}


def _beyond_dataset(name, root, limit):
    if name == "nights":
        return nights.NightsDataset(root, "test", limit=limit)
    return iqa.OpinionDataset(name, root, limit=limit)


def evaluate_beyond(network, roots, out_dir, limit=None, channel_weights=None, batch_size=50, **loader_options):
    """Distances per point on each dataset of `roots` ({name: folder}), cached in
    out_dir/distances/<name>.npz: {name: {point: d, "score": s}} for the opinion-score datasets
    (d(reference, distorted)), {name: {"<point>_d0", "<point>_d1", "judge"}} for NIGHTS (its test
    split, d(ref, left) and d(ref, right)). Whole images go through the network in batches of about
    the pixels of `batch_size` BAPPS patches."""
    cache = Path(out_dir) / "distances"
    datasets = {name: _beyond_dataset(name, root, limit) for name, root in roots.items()}  # missing data stops here
    out = {}
    for name, dataset in datasets.items():
        path = cache / f"{name}.npz"
        nightly = name == "nights"
        points = [f"{p}_d0" for p in network.points] if nightly else list(network.points)
        cached = _load_cached(path, points, len(dataset))
        if cached is None:
            first = dataset[0]["ref"]
            per_pass = max(1, batch_size * PATCH_PIXELS // (first.shape[1] * first.shape[2]))
            options = dict(loader_options, batch_size=per_pass, description=name, channel_weights=channel_weights)
            if nightly:
                d = pair_distances(network, dataset, "p0", "p1", reference="ref", **options)
                cached = {f"{p}_d0": v[0] for p, v in d.items()} | {f"{p}_d1": v[1] for p, v in d.items()}
                cached["judge"] = dataset.judge
            else:
                cached = pair_distances(network, dataset, "ref", "dist", **options)
                cached["score"] = dataset.score
            _save_npz(path, cached)
        out[name] = cached
    return out


def evaluate_calibrated(arch, points, data_root, out_dir, subsets, jnd_subsets, variant, recipe, switches,
                        train_subsets, weights, normalize_input, inception_transform, seed, limit=None,
                        progress=True, roots=None, **loader_options):
    """The calibrated variants (lin, tune, scratch): one metric per point trained on BAPPS's
    2AFC training triplets (dplib.calibration.calibrate_each, `switches` its SWITCHES by name),
    saved as out_dir/calibration_<point>.pt (a rerun loads it instead of training again), then
    scored on the validation sets as `evaluate` scores the baseline, and on the datasets of
    `roots` as `evaluate_beyond` does. Returns evaluate's two dicts and evaluate_beyond's."""
    from ..calibration import calibrate_each
    from ..similarity import PerceptualSimilarity, load_calibration, save_calibration

    device = loader_options.get("device", "cpu")
    paths = {p: Path(out_dir) / f"calibration_{p}.pt" for p in points}
    wanted = _calibration_settings(variant, recipe, switches, train_subsets, limit, seed)
    saved = {p: load_calibration(path) for p, path in paths.items() if path.is_file()}  # each file read once
    done = {p: PerceptualSimilarity(arch, p, calibration=calibration, weights=weights,
                                    inception_transform=inception_transform,
                                    input_scaling="imagenet" if normalize_input else "none", seed=seed)
            for p, calibration in saved.items() if _settings_of(calibration) == wanted}
    todo = [p for p in points if p not in done]
    if todo:
        trained = calibrate_each(arch, todo, data_root, variant=variant, recipe=recipe, **switches, weights=weights,
                                 subsets=train_subsets, limit=limit, device=device, seed=seed,
                                 normalize_input=normalize_input, inception_transform=inception_transform,
                                 progress=progress, metrics=Path(out_dir) / METRICS)
        for point, (metric, provenance) in trained.items():
            save_calibration(paths[point], metric, **provenance)
            shutil.rmtree(Path(out_dir) / "calibrated" / point, ignore_errors=True)  # distances of an older one
            done[point] = metric
    two_afc_distances, jnd_distances, beyond = {}, {}, {}
    for point, metric in done.items():
        metric.to(device)
        folder, weights_of_point = Path(out_dir) / "calibrated" / point, dict(metric.channel_weights)
        two_afc, jnd = evaluate(metric.network, data_root, folder, subsets, jnd_subsets, limit=limit,
                                channel_weights=weights_of_point, progress=progress, **loader_options)
        others = evaluate_beyond(metric.network, roots or {}, folder, limit=limit, channel_weights=weights_of_point,
                                 progress=progress, **loader_options)
        for merged, part in ((two_afc_distances, two_afc), (jnd_distances, jnd), (beyond, others)):
            for subset, arrays in part.items():
                merged.setdefault(subset, {}).update(arrays)
    return two_afc_distances, jnd_distances, beyond


def _calibration_settings(variant, recipe, switches, train_subsets, limit, seed):
    """What makes two calibrations the same: a saved one is reused only when all of it matches."""
    from ..calibration import SWITCHES, _settings

    name, settings = _settings(recipe)
    return dict(variant=variant, recipe={k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
                switches={k: switches[k] for k in SWITCHES}, train_subsets=list(train_subsets), limit=limit, seed=seed)


def _settings_of(calibration):
    """_calibration_settings of a saved calibration (it holds tuples as lists already; a
    switch it lacks, from an older dplib, makes it differ)."""
    from ..calibration import RECIPES, SWITCHES

    recipe, data = calibration["recipe"], calibration["data"]
    return dict(variant=calibration["variant"], recipe={k: recipe[k] for k in RECIPES["released"]},
                switches={k: recipe.get(k) for k in SWITCHES}, train_subsets=data["bapps_train_subsets"],
                limit=data["limit"], seed=calibration["seed"])


def score_rows(arch, points, two_afc_distances, jnd_distances, beyond=None):
    """Tidy score rows: 2AFC per subset and their mean ("all"); JND mAP per subset and over
    all JND pairs pooled ("all"); for the datasets beyond BAPPS, SRCC, KRCC and PLCC of each
    opinion-score dataset and NIGHTS's 2AFC (its test split)."""
    rows = []
    for name, d in (beyond or {}).items():
        for point in points:
            if name == "nights":
                rows.append(score_row("b1", "2afc", two_afc(d[f"{point}_d0"], d[f"{point}_d1"], d["judge"]),
                                      dataset="nights", arch=arch, point=point, note="test split"))
                continue
            for score, correlation in (("srcc", srcc), ("krcc", krcc), ("plcc", plcc)):
                rows.append(score_row("b1", score, correlation(d[point], d["score"]), dataset=name, arch=arch,
                                      point=point))
    for point in points:
        per_subset = {s: two_afc(d[f"{point}_d0"], d[f"{point}_d1"], d["judge"]) for s, d in two_afc_distances.items()}
        for subset, value in per_subset.items():
            rows.append(score_row("b1", "2afc", value, dataset=subset, arch=arch, point=point))
        if per_subset:
            rows.append(score_row("b1", "2afc", np.mean(list(per_subset.values())), dataset="all", arch=arch,
                                  point=point, note=f"mean over {len(per_subset)} subsets"))
        for subset, d in jnd_distances.items():
            rows.append(score_row("b1", "jnd_map", jnd_map(d[point], d["same"]), dataset=subset, arch=arch,
                                  point=point))
        if jnd_distances:
            pooled = jnd_map(np.concatenate([d[point] for d in jnd_distances.values()]),
                             np.concatenate([d["same"] for d in jnd_distances.values()]))
            rows.append(score_row("b1", "jnd_map", pooled, dataset="all", arch=arch, point=point,
                                  note=f"pooled over {len(jnd_distances)} subsets"))
    return rows


def plot_scores(rows, title=""):
    """2AFC per subset (SRCC per dataset when no 2AFC was scored), one bar group per subset,
    one bar per extraction point."""
    import pandas as pd

    table = pd.DataFrame(rows)
    score = "2afc" if (table.score == "2afc").any() else "srcc"
    table = table[table.score == score].pivot(index="dataset", columns="point", values="value")
    axes = table.plot.bar(figsize=(8, 3), ylim=(0.4, 1.0) if score == "2afc" else (-1.0, 1.0), title=title, rot=0)
    axes.set_ylabel(score.upper())
    axes.figure.tight_layout()
    return axes.figure


def data_needs(parameters):
    """What a run reads: the BAPPS subsets of its `subsets` and `jnd_subsets` (and for a calibrated
    variant the 2AFC training subsets of `train_subsets`) when `datasets` names BAPPS, or when a
    calibration needs its training set; and each other dataset `datasets` names, whole (NIGHTS: its
    test split)."""
    calibrated = parameters["variant"] != "baseline"
    scored = "bapps" in parameters["datasets"]
    needs = {}
    if scored or calibrated:
        needs["bapps"] = bapps.needs(two_afc_val=parameters["subsets"] if scored else (),
                                     jnd_val=parameters["jnd_subsets"] if scored else (),
                                     two_afc_train=parameters["train_subsets"] if calibrated else ())
    for name in parameters["datasets"]:
        if name in iqa.NAMES:
            needs[name] = iqa.needs(name)
        elif name == "nights":
            needs[name] = nights.needs(("test",))
    return needs


def data_roots(parameters):
    """{dataset: folder} of what a run reads: BAPPS in data_root, the others in `<name>_root`."""
    return {"bapps": parameters["data_root"], **{n: parameters[f"{n}_root"] for n in BEYOND}}


# Items and image sides of the datasets beyond BAPPS, as published (NIGHTS: all its unanimous
# triplets, no per-split count being published): what the time estimates count.
BEYOND_SIZES = {**{n: (s.images, s.image_size[0] * s.image_size[1]) for n, s in iqa.SOURCES.items()},
                "nights": (nights.TRIPLETS, nights.SIZE ** 2)}


def steps(parameters):
    """Forward batches of one run over the BAPPS validation subsets it scores (their published
    sizes, or the smoke limit), and the other datasets' images counted as batches of the same
    pixels: what a device report's B1 step measures."""
    limit = parameters.get("patches_per_subset") or float("inf")
    per_subset = []
    if "bapps" in parameters["datasets"]:
        per_subset += [bapps.COUNTS["2afc/val"][s][0] for s in parameters["subsets"]]
        per_subset += [bapps.COUNTS["jnd/val"][s][0] for s in parameters["jnd_subsets"]]
    batches = sum(math.ceil(min(n, limit) / parameters["batch_size"]) for n in per_subset)
    for name in parameters["datasets"]:
        if name in BEYOND_SIZES:
            items, pixels = BEYOND_SIZES[name]
            batches += math.ceil(min(items, limit) * pixels / PATCH_PIXELS / parameters["batch_size"])
    return batches


def step_key(parameters):
    return "b1"


def disk_bytes(parameters):
    """(kept, while running) bytes on disk of one run: its distance files (float64 d0, d1 per
    point and item, and the labels)."""
    return steps(parameters) * parameters["batch_size"] * (2 * len(parameters["points"]) + 1) * 8, 0


def check_parameters(parameters):
    """[(parameter, problem)]: the B1 notebook's choices, checked by the grid before any run."""
    from ..calibration import CLAMP_SCOPES, CLAMPS, FORWARD_PASSES, RECIPES, TRUNK_MODES, VARIANTS
    from . import check_choices, each, not_negative

    return check_choices(parameters, {
        "variant": VARIANTS, "calibration_recipe": tuple(RECIPES), "lin_clamp": CLAMPS, "trunk_mode": TRUNK_MODES,
        "lin_trunk_mode": TRUNK_MODES, "clamp_scope": CLAMP_SCOPES, "forward_passes": FORWARD_PASSES,
        "subsets": each(bapps.TWO_AFC_SUBSETS), "jnd_subsets": each(bapps.JND_SUBSETS),
        "train_subsets": each(bapps.TRAIN_SUBSETS), "patches_per_subset": not_negative,
        "datasets": each(DATASETS)})
