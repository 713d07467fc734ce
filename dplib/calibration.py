"""Calibrating a perceptual similarity on BAPPS's 2AFC judgements: LPIPS's "lin", "tune" and
"scratch" for any loss network, as the authors' released Benchmark 1 code trains them.

    metric, provenance = calibrate("vgg16", "late", "data/bapps", variant="lin")
    save_calibration("vgg16_late_lin.pt", metric, **provenance)  # dplib.similarity

Per triplet (ref, p0, p1, judge): d0 = d(ref, p0), d1 = d(ref, p1) through the metric being
trained (its channel weights behind dropout, a 1x1 convolution without bias, as lpips's lin
layer), then the ranking head G on (d0, d1, d0 - d1, d0 / (d1 + 0.1), d1 / (d0 + 0.1)) and
binary cross-entropy against the judge (the share of people who chose p1). The channel
weights are kept non-negative. "lin" trains the weights and the head on a frozen network;
"tune" the network too; "scratch" a randomly initialised network with them.

lin_cache=True trains "lin" on cached vectors instead: with a frozen network the 1x1 layer
and the spatial mean commute, so d needs per pair and point only the spatial mean of each
channel's squared difference, computed in one pass over the training set; dropout then acts
on those channel means rather than on the maps (a named option, not the released recipe).
"""

import functools
import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from .data import bapps
from .lossnets import check_points
from .progress import tqdm
from .similarity import PerceptualSimilarity
from .errors import InputError

VARIANTS = ("baseline", "lin", "tune", "scratch")
# The released code (perceptual_metric/experiment.py: Adam 1e-3, betas (0.5, 0.999), batch 256,
# ConstantLR 5 epochs then LinearLR to 0 over 5, dropout 0.5 before the 1x1 layers) and the
# lpips package's trainer (lpips/trainer.py and train.py: Adam 1e-4, batch 50, the same
# epochs and decay).
RECIPES = {
    "released": dict(lr=1e-3, batch_size=256, betas=(0.5, 0.999), constant_epochs=5, decay_epochs=5, dropout=0.5),
    "lpips": dict(lr=1e-4, batch_size=50, betas=(0.5, 0.999), constant_epochs=5, decay_epochs=5, dropout=0.5),
}
CLAMPS = ("after_step", "before_update")
CLAMP_SCOPES = ("channel_weights", "every_1x1")
TRUNK_MODES = ("train", "eval")
FORWARD_PASSES = ("separate", "shared")
# How a calibration trains, beside its recipe: each switch's default and the values that give
# the released behaviour (PROTOCOL.md, Benchmark 1), checked by _check and kept in the provenance.
SWITCHES = ("lin_cache", "clamp", "clamp_scope", "trunk_mode", "lin_trunk_mode", "forward_passes")
HEAD_EPS = 0.1  # lpips's Dist2LogitLayer: d0 / (d1 + 0.1)
LOG_EVERY = 20  # optimiser steps per metrics line (151K triplets in batches of 256: 30 lines an epoch)


def lr_factors(constant_epochs, decay_epochs):
    """The learning rate of each epoch over the base rate. Both trainers step their schedule at
    the end of an epoch, so the decay shows one epoch late: with 5 + 5, [1, 1, 1, 1, 1, 1, 0.8,
    0.6, 0.4, 0.2] (lpips: lr - lr/5 after each epoch past the 5th; the released code:
    SequentialLR(ConstantLR(1.0, 5), LinearLR(1.0, 0.0, 5), milestones=[5]))."""
    return [1.0 if epoch <= constant_epochs else 1.0 - (epoch - constant_epochs) / decay_epochs
            for epoch in range(constant_epochs + decay_epochs)]


class RankingHead(nn.Module):
    """lpips's Dist2LogitLayer (and the released code's "large" logit net): two distances ->
    the probability that a person chooses p1."""

    def __init__(self, hidden=32):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(5, hidden, 1), nn.LeakyReLU(0.2), nn.Conv2d(hidden, hidden, 1),
                                   nn.LeakyReLU(0.2), nn.Conv2d(hidden, 1, 1), nn.Sigmoid())

    def forward(self, d0, d1):                                               # (N,), (N,) -> (N,)
        x = torch.stack((d0, d1, d0 - d1, d0 / (d1 + HEAD_EPS), d1 / (d0 + HEAD_EPS)), dim=1)
        return self.model(x[:, :, None, None]).flatten()


def training_set(root, subsets=bapps.TRAIN_SUBSETS, limit=None):
    """BAPPS's 2AFC training triplets, every subset given (the released code: all three)."""
    return ConcatDataset([bapps.TwoAFCDataset(root, s, split="train", limit=limit) for s in subsets])


def _initial_weights(metric, generator):
    """Random 1x1 weights per point, as torch initialises lpips's lin Conv2d(C, 1, 1): U(-1/sqrt(C), 1/sqrt(C))."""
    channels = {p: f.shape[1] for p, f in metric.network(torch.zeros(1, 3, 64, 64)).items()}
    return nn.ParameterDict({p: nn.Parameter((torch.rand(c, generator=generator) * 2 - 1) / math.sqrt(c))
                             for p, c in channels.items()})


def _clamp(metric, scope, released_timing):
    """The channel weights (scope "every_1x1": every 1x1 convolution of the network too, as the
    lpips trainer's clamp_weights) set >= 0. The released timing (between a step's forward and its
    update) writes through `.data`, as the released code does, which autograd does not see: the
    forward already used the unclamped weights and the update then moves the clamped ones."""
    tensors = list(metric.channel_weights.values())
    if scope == "every_1x1":
        tensors += [m.weight for m in metric.network.modules()
                    if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    with torch.no_grad():
        for w in tensors:
            if released_timing:
                w.data.clamp_(min=0)
            else:
                w.clamp_(min=0)


def _features(metric, images, device, train_trunk):
    with torch.set_grad_enabled(train_trunk):
        return metric.network(images.to(device))


def _exact_distances(metric, batch, device, dropout, train_trunk, passes="separate"):
    """(d0, d1) of a batch through the maps, the channel weights behind dropout on the squared
    differences (released). passes "separate": ref and p0, then ref and p1, each its own forward
    pass (the released DistanceMetric called twice: four passes, so a network in train mode
    normalises each N-image batch on its own and moves its statistics four times); "shared":
    one pass of the 3N images (cat(ref, p0, p1)), the same numbers for a network in eval mode."""
    if passes == "shared":
        features = _features(metric, torch.cat([batch["ref"], batch["p0"], batch["p1"]]), device, train_trunk)
        pairs = {point: [(ref, p0), (ref, p1)] for point, (ref, p0, p1) in
                 ((point, metric.normalize(f).chunk(3)) for point, f in features.items())}
    else:
        passes_ = [_features(metric, batch[name], device, train_trunk) for name in ("ref", "p0", "ref", "p1")]
        pairs = {point: [(metric.normalize(passes_[0][point]), metric.normalize(passes_[1][point])),
                         (metric.normalize(passes_[2][point]), metric.normalize(passes_[3][point]))]
                 for point in passes_[0]}
    d0 = d1 = 0
    for point, ((ref0, p0), (ref1, p1)) in pairs.items():
        w = metric.channel_weights[point].view(1, -1, 1, 1)
        d0 = d0 + nn.functional.conv2d(nn.functional.dropout((ref0 - p0).pow(2), dropout, training=True), w
                                       ).mean(dim=(1, 2, 3))
        d1 = d1 + nn.functional.conv2d(nn.functional.dropout((ref1 - p1).pow(2), dropout, training=True), w
                                       ).mean(dim=(1, 2, 3))
    return d0, d1


@torch.no_grad()
def channel_means(metric, dataset, batch_size, device, progress=True):
    """{point: (N, 2, C)} float32: per triplet, the spatial mean of each channel's squared
    difference of the unit-normalised features, ref against p0 and against p1 (one pass)."""
    loader = DataLoader(dataset, batch_size=batch_size)
    out = {p: [] for p in metric.points}
    for batch in tqdm(loader, desc="caching channel means", leave=False, disable=not progress):
        images = torch.cat([batch["ref"], batch["p0"], batch["p1"]]).to(device)
        for point, f in metric.network(images).items():
            ref, p0, p1 = metric.normalize(f).chunk(3)
            out[point].append(torch.stack([(ref - p0).pow(2).mean(dim=(2, 3)), (ref - p1).pow(2).mean(dim=(2, 3))],
                                          dim=1).float().cpu())
    return {p: torch.cat(v) for p, v in out.items()}


def _settings(recipe):
    if isinstance(recipe, dict):  # your own: every key of a named recipe
        missing = set(RECIPES["released"]) - set(recipe)
        if missing:
            raise InputError(f"a recipe dict needs {sorted(missing)} too (see dplib.calibration.RECIPES)")
        return "custom", recipe
    if recipe not in RECIPES:
        raise InputError(f"recipe must be one of {', '.join(RECIPES)} or a dict, got {recipe!r}")
    return recipe, RECIPES[recipe]


def _check(variant, switches):
    """The variant and the switches (SWITCHES, all of them) checked; returns the switches."""
    if variant not in VARIANTS[1:]:
        raise InputError(f"variant must be one of {', '.join(VARIANTS[1:])} to calibrate, got {variant!r}")
    for name, allowed in (("clamp", CLAMPS), ("clamp_scope", CLAMP_SCOPES), ("trunk_mode", TRUNK_MODES),
                          ("lin_trunk_mode", TRUNK_MODES), ("forward_passes", FORWARD_PASSES)):
        if switches[name] not in allowed:
            raise InputError(f"{name} must be one of {', '.join(allowed)}, got {switches[name]!r}")
    if switches["lin_cache"] and variant != "lin":
        raise InputError("lin_cache needs a frozen network: it is for variant 'lin' only")
    if switches["lin_cache"] and switches["lin_trunk_mode"] == "train":
        raise InputError("lin_cache needs fixed features: a network in train mode (lin_trunk_mode 'train') gives "
                         "each batch its own; use lin_trunk_mode 'eval'")
    return dict(switches)


def _metric(arch, points, weights, seed, normalize_input, inception_transform):
    return PerceptualSimilarity(arch, points, weights=weights, seed=seed, inception_transform=inception_transform,
                                input_scaling="imagenet" if normalize_input else "none")


def _untrained(arch, points, variant, weights, seed, device, normalize_input, inception_transform):
    """The metric to train, its channel weights drawn as torch draws a Conv2d's."""
    metric = _metric(arch, points, None if variant == "scratch" else weights, seed, normalize_input,
                     inception_transform)
    metric.channel_weights = _initial_weights(metric, torch.Generator().manual_seed(seed))
    metric.variant = variant
    return metric.to(device)


class _Calibrating(nn.Module):
    """What a calibration trains, as one module for dplib.train.fit: the metric (its channel
    weights; its network too for tune and scratch) and a ranking head. Its network's mode is the
    switches' (train: batch statistics, as the released fit; eval), whatever fit asks of it."""

    def __init__(self, metric, head, network_mode):
        super().__init__()
        self.metric, self.head, self.network_mode = metric, head, network_mode

    def train(self, mode=True):
        super().train(mode)
        nn.Module.train(self.metric.network, mode and self.network_mode == "train")  # past LossNetwork's always-eval
        return self


def _loss(cached, settings, switches, device, train_trunk):
    """loss(model, batch) for fit: BCE of the head's probability on (d0, d1) against the judge;
    a batch is BAPPS's triplets, or with `cached` indices into the cached channel means."""

    def loss_fn(model, batch):
        metric = model.metric
        if cached is None:
            d0, d1 = _exact_distances(metric, batch, device, settings["dropout"], train_trunk,
                                      switches["forward_passes"])
            judge = batch["judge"].float().to(device)
        else:
            index, judge = batch[0], batch[1].to(device)
            d0 = d1 = 0
            for point, w in metric.channel_weights.items():
                v = nn.functional.dropout(cached[point][index].to(device), settings["dropout"], training=True)
                d0, d1 = d0 + v[:, 0] @ w, d1 + v[:, 1] @ w                    # (N, 2, C) -> (N,) each
        return nn.functional.binary_cross_entropy(model.head(d0, d1), judge)

    return loss_fn


def _fit(metric, dataset, cached, settings, name, switches, epochs, device, seed, progress, metrics=None):
    """Train `metric`'s channel weights (and for tune/scratch its network) with a new ranking
    head, through dplib.train.fit (the recipe's schedule and the clamp as its hooks); the metric
    ends in eval mode and frozen. Returns the per-epoch history. metrics: a metrics.jsonl to append
    each interval's mean loss to (dplib.metrics_log), its lines marked with the points trained (a
    training started again replaces its own lines)."""
    from .train import Hooks, fit

    torch.manual_seed(seed)  # the head's initial weights and dropout's masks
    train_trunk = metric.variant in ("tune", "scratch")
    model = _Calibrating(metric, RankingHead().to(device),
                         switches["trunk_mode"] if train_trunk else switches["lin_trunk_mode"])
    metric.network.requires_grad_(train_trunk)
    for w in metric.channel_weights.values():
        w.requires_grad_(True)
    parameters = list(metric.channel_weights.values()) + list(model.head.parameters())
    parameters += list(metric.network.parameters()) if train_trunk else []
    optimizer = torch.optim.Adam(parameters, lr=settings["lr"], betas=tuple(settings["betas"]))
    factors = lr_factors(settings["constant_epochs"], settings["decay_epochs"])[:epochs]
    clamp = functools.partial(_clamp, metric, switches["clamp_scope"])
    history = []
    hooks = Hooks(schedule=lambda epoch: factors[epoch],
                  before_update=(lambda: clamp(released_timing=True)) if switches["clamp"] == "before_update" else None,
                  after_step=(lambda: clamp(released_timing=False)) if switches["clamp"] == "after_step" else None,
                  epoch_end=lambda epoch, loss, lr: history.append({"epoch": epoch + 1, "lr": lr, "loss": loss}))
    if cached is not None:  # the cached channel means: batches of indices, with their judges
        judges = torch.tensor(np.concatenate([d.judge for d in dataset.datasets]), dtype=torch.float32)
        dataset = torch.utils.data.TensorDataset(torch.arange(len(judges)), judges)
    fit(model, _loss(cached, settings, switches, device, train_trunk), dataset, None, epochs=len(factors),
        batch_size=settings["batch_size"], optimizer=optimizer, device=device, seed=seed, description=name,
        progress=progress, hooks=hooks, metrics=metrics or False, log_every=LOG_EVERY,
        metrics_key={"calibration": "/".join(metric.points)})
    metric.network.requires_grad_(False)
    for w in metric.channel_weights.values():
        w.requires_grad_(False)
    metric.eval()
    return history


def _provenance(name, settings, switches, history, subsets, dataset, limit, seed):
    recipe = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    return {"recipe": {"name": name, **recipe, **switches, "epochs": len(history)},
            "data": {"bapps_train_subsets": list(subsets), "triplets": len(dataset), "limit": limit},
            "history": history, "seed": seed}


def calibrate(arch, points, root, variant="lin", recipe="released", lin_cache=False, clamp="after_step",
              clamp_scope="channel_weights", trunk_mode="train", lin_trunk_mode="eval", forward_passes="separate",
              weights="imagenet", subsets=bapps.TRAIN_SUBSETS, limit=None, epochs=None, device="cpu", seed=0,
              normalize_input=True, inception_transform=False, progress=True, metrics=None):
    """Train one calibrated PerceptualSimilarity over `points` together (as lpips's metric over
    its layers); returns (metric, provenance): the recipe, the data and the history.

    variant: lin, tune or scratch. recipe: "released", "lpips" (RECIPES) or a dict of their
    keys. lin_cache: train "lin" on cached channel means (module docstring). clamp:
    "after_step" (the weights >= 0 after every optimiser step: lpips's trainer) or
    "before_update" (the released code clamps in Lightning's on_before_zero_grad, between a
    step's forward and its update, so the last update stays unclamped). clamp_scope:
    "channel_weights" (the released code) or "every_1x1" (the lpips trainer: every 1x1
    convolution, the network's included). trunk_mode: "train" (tune/scratch train the network
    in train mode, batch norm updating its statistics, as the released Lightning fit did) or
    "eval". lin_trunk_mode: "eval" (lin's frozen network as it was built to be) or "train" (the
    released fit put it in train mode too: batch statistics, drifting running statistics).
    forward_passes: "separate" (ref, p0, ref, p1: the released four passes) or "shared" (one
    pass of the three). epochs: None for the recipe's; a smaller number runs the schedule's first
    epochs only (a shorter run, not another recipe). metrics: a metrics.jsonl to log the training to.
    """
    switches = _check(variant, dict(lin_cache=lin_cache, clamp=clamp, clamp_scope=clamp_scope, trunk_mode=trunk_mode,
                                    lin_trunk_mode=lin_trunk_mode, forward_passes=forward_passes))
    name, settings = _settings(recipe)
    dataset = training_set(root, subsets, limit)  # opened first: missing data stops before any work
    metric = _untrained(arch, points, variant, weights, seed, device, normalize_input, inception_transform)
    cached = channel_means(metric, dataset, settings["batch_size"], device, progress) if lin_cache else None
    history = _fit(metric, dataset, cached, settings, f"calibrate {arch}", switches, epochs, device, seed, progress,
                   metrics)
    return metric, _provenance(name, settings, switches, history, subsets, dataset, limit, seed)


def calibrate_each(arch, points, root, variant="lin", recipe="released", lin_cache=False, clamp="after_step",
                   clamp_scope="channel_weights", trunk_mode="train", lin_trunk_mode="eval",
                   forward_passes="separate", weights="imagenet", subsets=bapps.TRAIN_SUBSETS, limit=None,
                   epochs=None, device="cpu", seed=0, normalize_input=True, inception_transform=False, progress=True,
                   metrics=None):
    """One calibrated metric per point (Benchmark 1's loss networks are single points):
    {point: (metric, provenance)}. With lin_cache, one pass over the training set caches every
    point's channel means (the shared pass Benchmark 1 makes), and each point trains on its own.
    The switches as calibrate's."""
    switches = _check(variant, dict(lin_cache=lin_cache, clamp=clamp, clamp_scope=clamp_scope, trunk_mode=trunk_mode,
                                    lin_trunk_mode=lin_trunk_mode, forward_passes=forward_passes))
    name, settings = _settings(recipe)
    dataset = training_set(root, subsets, limit)
    cached = None
    if lin_cache:
        shared = _metric(arch, points, weights, seed, normalize_input, inception_transform).to(device)
        cached = channel_means(shared, dataset, settings["batch_size"], device, progress)
    out = {}
    for point in check_points(points, arch):
        metric = _untrained(arch, point, variant, weights, seed, device, normalize_input, inception_transform)
        history = _fit(metric, dataset, None if cached is None else {point: cached[point]}, settings,
                       f"calibrate {arch} {point}", switches, epochs, device, seed, progress, metrics)
        out[point] = (metric, _provenance(name, settings, switches, history, subsets, dataset, limit, seed))
    return out


@torch.no_grad()
def score(metric, root, subsets=bapps.TWO_AFC_SUBSETS, jnd_subsets=bapps.JND_SUBSETS, batch_size=50, device="cpu",
          limit=None):
    """A metric's agreement with people on BAPPS's validation sets, those under `root`:
    {"2afc": {subset: score, "all": their mean}, "jnd_map": {subset: mAP, "all": pooled}};
    a part not downloaded is left out."""
    from pathlib import Path

    from .metrics import jnd_map, two_afc

    metric = metric.to(device).eval()

    def distances(dataset, pairs):
        out = [[] for _ in pairs]
        for batch in DataLoader(dataset, batch_size=batch_size):
            for i, (a, b) in enumerate(pairs):
                out[i].append(metric(batch[a].to(device), batch[b].to(device)).double().cpu())
        return [torch.cat(d).numpy() for d in out]

    scores = {}
    present = [s for s in subsets if (Path(root) / "2afc" / "val" / s).is_dir()]
    if present:
        per_subset = {}
        for subset in present:
            dataset = bapps.TwoAFCDataset(root, subset, limit=limit)
            d0, d1 = distances(dataset, [("ref", "p0"), ("ref", "p1")])
            per_subset[subset] = float(two_afc(d0, d1, dataset.judge))
        scores["2afc"] = {**per_subset, "all": float(np.mean(list(per_subset.values())))}
    present = [s for s in jnd_subsets if (Path(root) / "jnd" / "val" / s).is_dir()]
    if present:
        per_subset, pooled = {}, ([], [])
        for subset in present:
            dataset = bapps.JNDDataset(root, subset, limit=limit)
            [d] = distances(dataset, [("p0", "p1")])
            per_subset[subset] = float(jnd_map(d, dataset.same))
            pooled[0].append(d)
            pooled[1].append(dataset.same)
        scores["jnd_map"] = {**per_subset, "all": float(jnd_map(np.concatenate(pooled[0]), np.concatenate(pooled[1])))}
    return scores
