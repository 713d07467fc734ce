"""Benchmark 3: an iterative U-Net for road delineation trained with BCE plus mu times the
deep perceptual loss (Eq. 4-5), on every iteration's output, scored by correctness,
completeness and quality on the test split.

The loss of iteration i (1..K) is weighted (i) / (1 + ... + K), as in the authors' code
(iteration_weights="linear"), or 1 / K ("equal"), for the BCE and the perceptual term
alike. The prediction and the ground truth are each replicated to 3 channels for the loss
network (which sees probabilities in [0, 1], as images). Scores are per image, averaged
with nanmean (an image with no predicted road has no correctness), in percent as Table X.
"""

import contextlib
import copy
import math

import numpy as np
import torch

from ..data import roads
from ..losses import feature_loss, pixel_bce
from ..metrics import delineation_scores
from . import Benchmark, Score
from .record import score_row

BENCHMARK = Benchmark(
    name="b3", title="road delineation", module="dplib.benchmarks.b3", notebook="notebooks/b3_delineation.ipynb",
    params="params/b3.yaml", datasets=("roads",),
    scores=tuple(Score(name + suffix, "higher", ("mrd",),
                       label="percent, Wegner et al.'s measures (Table X)" + (", 3 px slack" if suffix else ""))
                 for suffix in ("", "_slack3") for name in ("correctness", "completeness", "quality")),
    paper_items=("table_3", "table_4", "table_10", "fig_2"), headline="b3 quality mrd")
from ..errors import InputError


ITERATION_WEIGHTS = ("linear", "equal")


def iteration_weights(k, kind="linear"):
    """Loss weights of iterations 1..k: linear (i / (1 + ... + k), the authors') or equal (1 / k)."""
    if kind == "linear":
        return [i / (k * (k + 1) / 2) for i in range(1, k + 1)]
    if kind == "equal":
        return [1 / k] * k
    raise InputError(f"unknown iteration weights {kind!r}; choose one of {', '.join(ITERATION_WEIGHTS)}")


def make_loss(loss_network, mu, device, weights="linear"):
    """loss_fn(model, (images, masks)) for dplib.train.fit: the weighted sum over iterations of
    BCE + mu * Eq. 5. With mu = 0 the loss network is never run."""
    iteration_weights(1, weights)  # a bad name stops here

    def loss_fn(model, batch):
        images, masks = (t.to(device, non_blocking=True) for t in batch)
        outputs = model(images)                                  # K x (N, 1, H, W) logits
        target_features = None
        if mu:
            with torch.no_grad():
                target_features = loss_network(masks.expand(-1, 3, -1, -1), check_range=False)  # masks: [0, 1]
        total = 0
        for weight, logits in zip(iteration_weights(len(outputs), weights), outputs):
            loss = pixel_bce(logits, masks)
            if mu:
                prediction = torch.sigmoid(logits).expand(-1, 3, -1, -1)
                loss = loss + mu * feature_loss(loss_network(prediction, check_range=False), target_features)
            total = total + weight * loss
        return total

    return loss_fn


def _applied(model, iterations):
    """An IterativeUNet applied `iterations` times within the block; any other model (a stand-in)
    as it is."""
    applied = getattr(model, "applied", None)
    return applied(iterations) if applied is not None and iterations else contextlib.nullcontext()


@torch.no_grad()
def predict(model, images, device, batch_statistics=False, batch_size=8):
    """Probabilities of each of the model's test iterations: (K, N, 1, H, W) on the CPU.

    batch_statistics=True predicts as the released test did, which never called eval(): batch
    norm in train mode, normalising each tile by its own statistics (one tile per batch, as
    its test loader had), the running statistics left as they are (no_grad does not stop train
    mode from updating them, so they are restored)."""
    if batch_statistics:
        saved = copy.deepcopy(model.state_dict())
        model.train()
        batch_size = 1
    else:
        model.eval()
    outputs = []
    with _applied(model, getattr(model, "iterations", None)):
        for start in range(0, len(images), batch_size):
            logits = model(images[start:start + batch_size].to(device))
            outputs.append(torch.stack([torch.sigmoid(l.float()).cpu() for l in logits]))
    if batch_statistics:
        model.load_state_dict(saved)
        model.eval()
    return torch.cat(outputs, dim=1)


VALIDATION_SCORES = ("last_bce", "loss")


def make_validation(loss_fn, dataset, device, score, iterations, batch_size):
    """validate(model) -> over the validation split's batches, the mean of each batch's: last
    iteration's BCE ("last_bce", the authors' model selection: their sum of the batch means,
    divided by the constant number of batches) or training loss ("loss"). Lower is better.
    The model is applied `iterations` times, the training K as the released validation did."""
    if score not in VALIDATION_SCORES:
        raise InputError(f"unknown validation score {score!r}; choose one of {', '.join(VALIDATION_SCORES)}")

    def validate(model):
        values = []
        with _applied(model, iterations):
            for start in range(0, len(dataset), batch_size):
                images = (dataset.images[start:start + batch_size].float() / 255).to(device)
                masks = (dataset.masks[start:start + batch_size].float() / 255).to(device)
                if score == "loss":
                    values.append(loss_fn(model, (images, masks)).item())
                else:
                    values.append(pixel_bce(model(images)[-1], masks).item())
        return sum(values) / len(values)

    return validate


ITERATION_SCORES = ("last", "accumulated")


def _per_image(probabilities, masks, threshold, slack, iterations):
    """{score: per-image values} of the last iteration ("last"), or the authors' accumulation
    ("accumulated"): their loop added, after each iteration k, the scores of iterations 1..k,
    so iteration i counts K - i + 1 times (a per-image sum, not a mean: up to K(K+1)/2)."""
    if iterations == "last":
        return delineation_scores(probabilities[-1, :, 0], masks[:, 0], threshold=threshold, slack=slack)
    if iterations != "accumulated":
        raise InputError(f"unknown iteration scores {iterations!r}; choose one of {', '.join(ITERATION_SCORES)}")
    k = probabilities.shape[0]
    per_iteration = [delineation_scores(p[:, 0], masks[:, 0], threshold=threshold, slack=slack) for p in probabilities]
    return {name: sum((k - i) * scores[name] for i, scores in enumerate(per_iteration)) for name in per_iteration[0]}


def evaluate(model, dataset, device, arch, point, threshold, slacks, iterations, split, batch_statistics):
    """Correctness, completeness and quality (percent) on `dataset`, per image then averaged,
    for every slack; the slack-0 scores are named as in Table X, others get a `_slack<k>`
    suffix. iterations: "last" (the paper) or "accumulated" (`_per_image`); batch_statistics:
    see `predict`. Returns (rows, probabilities (K, N, 1, H, W))."""
    images, masks = dataset.images.float() / 255, dataset.masks.float() / 255
    probabilities = predict(model, images, device, batch_statistics)
    rows = []
    for slack in slacks:
        scores = _per_image(probabilities, masks, threshold, slack, iterations)
        suffix = f"_slack{slack:g}" if slack else ""
        for name, values in scores.items():
            undefined = int(np.isnan(values).sum())
            note = (f"{len(values)} {split} images, threshold {threshold}, slack {slack:g} px"
                    + ("" if iterations == "last" else ", iterations accumulated as the authors' code")
                    + (f", {undefined} undefined (no road predicted or none in the truth)" if undefined else ""))
            rows.append(score_row("b3", name + suffix, 100 * np.nanmean(values) if undefined < len(values) else np.nan,
                                  dataset="mrd", arch=arch, point=point, note=note))
    return rows, probabilities


def plot_iterations(images, masks, probabilities, count=2, title=""):
    """Image, the prediction of every iteration, and the ground truth, for `count` tiles."""
    import matplotlib.pyplot as plt

    iterations = probabilities.shape[0]
    figure, axes = plt.subplots(count, iterations + 2, figsize=(2.6 * (iterations + 2), 2.6 * count), squeeze=False)
    for row, i in zip(axes, range(count)):
        row[0].imshow(images[i].permute(1, 2, 0).numpy())
        row[0].set_title("image")
        for k in range(iterations):
            row[k + 1].imshow(probabilities[k, i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            row[k + 1].set_title(f"iteration {k + 1}")
        row[-1].imshow(masks[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        row[-1].set_title("ground truth")
        for axis in row:
            axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def data_needs(parameters):
    """What a run reads: the training and validation splits and its test split."""
    return {"roads": {"splits": {"train", "valid", parameters["test_split"]}}}


def steps(parameters):
    """Optimizer steps of one run: epochs of the published training tiles (or the smoke limit)."""
    tiles = min(parameters["tiles_limit"] or roads.SPLITS["train"], roads.SPLITS["train"])
    return parameters["epochs"] * math.ceil(tiles / parameters["batch_size"])


def step_key(parameters):
    return "b3"


def build_model(parameters):
    """The model a run trains, from its notebook parameters: the iterative U-Net (unet,
    base_channels, iterations_k, train_iterations_k). The notebook, the disk estimate and the
    bench scripts build it here, so a change to it is one place."""
    from ..models import IterativeUNet

    p = parameters
    return IterativeUNet(iterations=p["iterations_k"], train_iterations=p["train_iterations_k"], unet=p["unet"],
                         base_channels=p["base_channels"])


def disk_bytes(parameters):
    """(kept, while running) bytes on disk of one run: the checkpoint (model and Adam's two
    moments, float32)."""
    with torch.device("meta"):
        model = build_model(parameters)
    return 12 * sum(p.numel() for p in model.parameters()), 0


def check_parameters(parameters):
    """[(parameter, problem)]: the B3 notebook's choices, checked by the grid before any run."""
    from ..data.roads import TRAIN_TRANSFORMS
    from ..models.unet import UNETS
    from . import check_choices, not_negative, positive

    def slacks(values):
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise InputError(f"must be a non-empty list of whole numbers of pixels, 0 or more, got {values!r}")

    return check_choices(parameters, {
        "iteration_weights": ITERATION_WEIGHTS, "unet": UNETS, "train_transform": TRAIN_TRANSFORMS,
        "validation_score": VALIDATION_SCORES, "test_split": ("test", "valid"), "iteration_scores": ITERATION_SCORES,
        "slacks": slacks, "epochs": positive, "iterations_k": positive, "train_iterations_k": positive,
        "mu": not_negative, "lr": positive, "size": positive, "tiles_limit": not_negative,
        "base_channels": positive})
