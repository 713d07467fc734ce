"""Benchmark 4: autoencoders trained with a loss network, judged by how well small
predictors classify from their embeddings (the main paper's I-I-PS), plus the companion
papers' procedures, split by paper:

    dplib.benchmarks.b4                      the benchmark: its record and contract, the run's
                                             checks, the autoencoder, its loss and validation,
                                             the embeddings, the score rows
    dplib.benchmarks.b4_procedures           004's six procedures and the features they read
    dplib.benchmarks.b4_predictors           the main paper's seven MLPs and 003's search
    dplib.benchmarks.b4_decoder_retraining   003's Table VIII

The companion papers squash the features by a sigmoid (`feature_sigmoid=True`), the main
paper's code did not (the default). Every loss is a sum over elements per sample, averaged over
the batch; a VAE adds the KL divergence.
"""

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data import embeddings
from ..data.embeddings import AUTOENCODER_SPLIT, SIZE, SPLITS, STL10_ORIENTATIONS, to_model_input
from ..errors import InputError
from ..losses import perceptual_sse, squash
from ..models.autoencoder import (AUTOENCODERS, Autoencoder, FeatureDecoder, FeatureEncoder, ImageDecoder,
                                 ImageEncoder, ReleasedImageDecoder, ReleasedImageEncoder, kl_divergence)
from ..cache import size_gb
from . import Benchmark, Score
from .b4_predictors import PREDICTOR_LOSSES, PREDICTOR_SELECTIONS, PREDICTORS
from .b4_procedures import CACHE_DTYPE, PROCEDURES, check_procedure, needs_loss_network
from .record import score_row

BENCHMARK = Benchmark(
    name="b4", title="autoencoder embeddings", module="dplib.benchmarks.b4", notebook="notebooks/b4_autoencoding.ipynb",
    params="params/b4.yaml", datasets=("svhn", "stl10"),
    scores=(Score("accuracy", "higher", ("svhn", "stl10"), label="percent, test accuracy of the chosen MLP"),
            Score("linear_accuracy", "higher", ("svhn", "stl10"), label="percent, 003's linear regressors",
                  optional=True),
            Score("reconstruction_l1", "lower", ("svhn", "stl10"),
                  label="mean L1 per test image, decoder retrained pixel-wise (003)", optional=True)),
    paper_items=("table_3", "table_4", "table_11", "fig_2", "fig_3"), headline="b4 accuracy stl10")
IMAGE_PARTS = {"released": (ReleasedImageEncoder, ReleasedImageDecoder), "simple": (ImageEncoder, ImageDecoder)}


def build_autoencoder(procedure, dataset, feature_size, embedding_size, variational, autoencoder,
                      feature_decoder_sigmoid, validation_sample=False):
    """The procedure's autoencoder; image parts "released" (the authors') or "simple"; a feature
    decoder ending in a plain Linear (the released) or a sigmoid (feature_decoder_sigmoid); a
    VAE sampling z when validating too (validation_sample, as the released forward did)."""
    encoder_kind, decoder_kind, _ = check_procedure(procedure)
    if autoencoder not in AUTOENCODERS:
        raise InputError(f"unknown autoencoder {autoencoder!r}; choose one of {', '.join(AUTOENCODERS)}")
    size = SIZE[dataset]
    image_encoder, image_decoder = IMAGE_PARTS[autoencoder]
    encoder = (image_encoder(size, embedding_size, variational) if encoder_kind == "image"
               else FeatureEncoder(feature_size, embedding_size, variational))
    decoder = (image_decoder(size, embedding_size) if decoder_kind == "image"
               else FeatureDecoder(feature_size, embedding_size, sigmoid=feature_decoder_sigmoid))
    return Autoencoder(encoder, decoder, validation_sample=validation_sample)


REDUCTIONS = ("sum", "mean")


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise InputError(f"unknown loss reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")


def check_retrainable(procedure):
    """003's decoder retraining needs an image encoder: the new decoder reads its embeddings."""
    if check_procedure(procedure)[0] != "image":
        raise InputError(f"retrain_decoder needs an image encoder (I-I-PW, I-I-PS, I-F-FP), not {procedure}")


VAE_VALIDATIONS = ("sample", "mean")


def check_run(procedure, dataset, predictor, loss_reduction, retrain_decoder, predictor_selection, split,
              stl10_orientation, vae_validation):
    """The B4 notebook's choices, checked before any data is read: one line per mistake."""
    check_procedure(procedure)
    if dataset not in SIZE:
        raise InputError(f"unknown dataset {dataset!r}; choose one of {', '.join(SIZE)}")
    for name, value, allowed in (("predictor", predictor, PREDICTORS),
                                 ("predictor selection", predictor_selection, PREDICTOR_SELECTIONS),
                                 ("split", split, SPLITS), ("STL-10 orientation", stl10_orientation, STL10_ORIENTATIONS),
                                 ("VAE validation", vae_validation, VAE_VALIDATIONS)):
        if value not in allowed:
            raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    check_reduction(loss_reduction)
    if retrain_decoder:
        check_retrainable(procedure)


def squared_error(prediction, target, reduction):
    """"sum": summed over each sample's elements, averaged over the batch (Eq. 6 of the main
    paper, Eqs. 1-2 of 003); "mean": averaged over every element (the released MSELoss)."""
    if reduction == "sum":
        return (prediction - target).pow(2).flatten(1).sum(dim=1).mean()
    check_reduction(reduction)
    return F.mse_loss(prediction, target)


def make_loss(procedure, dataset, loss_network, device, reduction, kl_weight, feature_sigmoid, cache=None):
    """loss_fn(model, (images, labels, indices)) for dplib.train.fit: the procedure's loss
    (pixel-wise, Eq. 6 through losses.perceptual_sse, or feature prediction), with the features
    squashed by a sigmoid when `feature_sigmoid`. A VAE adds kl_weight x its KL divergence,
    summed over z ("sum") or averaged over z ("mean"), averaged over the batch."""
    encoder_kind, decoder_kind, loss_kind = check_procedure(procedure)
    check_reduction(reduction)
    point = loss_network.points[0] if loss_network is not None else None

    def loss_fn(model, batch):
        images, _, indices = batch
        images = images.to(device, non_blocking=True)
        target = None
        if needs_loss_network(procedure):
            if cache is not None:
                target = cache[indices].to(device, non_blocking=True)
            else:
                with torch.no_grad():  # images from to_model_input: [0, 1] by construction
                    target = loss_network(images, check_range=False)[point]
        encoded = squash(target, feature_sigmoid) if encoder_kind == "feature" else images
        reconstruction, mean, log_variance = model(encoded)
        if loss_kind == "pixel":
            loss = squared_error(reconstruction, images, reduction)
        elif loss_kind == "perceptual":  # Eq. 6
            loss = perceptual_sse(loss_network(reconstruction, check_range=False)[point], target, feature_sigmoid,
                                  reduction)
        else:  # feature prediction: the decoder's output against the (squashed) features
            loss = squared_error(reconstruction, squash(target, feature_sigmoid).flatten(1), reduction)
        if log_variance is not None:
            kl = kl_divergence(mean, log_variance)  # summed over z
            loss = loss + kl_weight * (kl if reduction == "sum" else kl / mean.shape[1])
        return loss

    return loss_fn


def make_validation(loss_fn, dataset, seed, batch_size=256):
    """validate(model) -> mean loss over the autoencoder's validation split (lower is better).
    A VAE built with validation_sample draws z from a generator seeded anew for every pass (the
    released code sampled when validating; seeded, the score of a model is repeatable)."""
    loader = DataLoader(dataset, batch_size=batch_size)

    def validate(model):
        sampling = getattr(model, "validation_sample", False)
        if sampling:
            model.sampling = torch.Generator().manual_seed(seed)
        total, count = 0.0, 0
        try:
            for batch in loader:
                total += loss_fn(model, batch).item() * len(batch[0])
                count += len(batch[0])
        finally:
            if sampling:
                model.sampling = None
        return total / count

    return validate


@torch.no_grad()
def embed(model, procedure, dataset, images, loss_network, device, feature_sigmoid, padding, batch_size=256):
    """Embeddings (the encoder's mean, as the released encode_data keeps) of uint8 images:
    (N, embedding) on the CPU."""
    encoder_kind = check_procedure(procedure)[0]
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_model_input(dataset, images[start:start + batch_size], padding).to(device)
        if encoder_kind == "feature":
            x = squash(loss_network(x)[loss_network.points[0]], feature_sigmoid)
        out.append(model.embed(x).float().cpu())
    return torch.cat(out)


def score_rows(test_accuracy, dataset, arch, point, procedure, variational, predictor, chosen_hidden,
               predictor_loss="mse_onehot", linear_accuracy=None, reconstruction_l1=None):
    """b4 score rows: "accuracy" (the chosen MLP's, or the linear one's), and with 003's search
    "linear_accuracy" (the chosen linear regressor's); with a retrained decoder "reconstruction_l1"."""
    note = (f"{procedure}{' VAE' if variational else ''}, {predictor} predictor ({predictor_loss}), chosen hidden "
            f"layers {chosen_hidden or 'none'}")
    rows = [score_row("b4", "accuracy", test_accuracy, dataset=dataset, arch=arch, point=point, note=note)]
    if linear_accuracy is not None:
        rows.append(score_row("b4", "linear_accuracy", linear_accuracy, dataset=dataset, arch=arch, point=point,
                              note=f"{procedure}{' VAE' if variational else ''}, 003's linear regressors"))
    if reconstruction_l1 is not None:
        rows.append(score_row("b4", "reconstruction_l1", reconstruction_l1, dataset=dataset, arch=arch, point=point,
                              note="mean L1 norm per test image after retraining the decoder with the pixel-wise loss"))
    return rows


def plot_summary(model, procedure, dataset, images, training, predictors, device, padding, title=""):
    """Reconstructions (image decoders), the autoencoder's validation loss and the
    predictors' validation accuracy curves."""
    import matplotlib.pyplot as plt

    image_decoder = check_procedure(procedure)[1] == "image" and check_procedure(procedure)[0] == "image"
    columns = 3 if image_decoder else 2
    figure, axes = plt.subplots(1, columns, figsize=(4.5 * columns, 3.5))
    if image_decoder:
        with torch.no_grad():
            x = to_model_input(dataset, images[:6], padding).to(device)
            reconstruction = model.eval()(x)[0].float().cpu()
        grid = torch.cat([torch.cat(list(x.cpu()), dim=2), torch.cat(list(reconstruction), dim=2)], dim=1)
        axes[0].imshow(grid.permute(1, 2, 0).clamp(0, 1).numpy())
        axes[0].set_title("input (top) / reconstruction")
        axes[0].axis("off")
    history = training["history"]
    axes[-2].plot([h["step"] for h in history], [h["score"] for h in history], marker="o")
    axes[-2].set_title("autoencoder validation loss")
    axes[-2].set_xlabel("step")
    for trained in predictors:
        label = " ".join([str(trained["hidden"] or "linear")] + [trained[k] for k in ("activation", "output")
                                                                  if len(predictors) > 7 and trained.get(k)])
        axes[-1].plot(trained["curve"], label=label, linewidth=0.8)
    axes[-1].set_title("predictor validation accuracy")
    axes[-1].set_xlabel("epoch")
    axes[-1].legend(fontsize=7 if len(predictors) <= 7 else 4, ncol=1 if len(predictors) <= 7 else 3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def data_needs(parameters):
    """What a run reads: its dataset's autoencoder split, train and test."""
    dataset = parameters["dataset"]
    return {dataset: embeddings.needs({AUTOENCODER_SPLIT[dataset], "train", "test"})}


def uses_loss_network(parameters):
    return needs_loss_network(parameters["procedure"])


def _autoencoder_images(parameters):
    dataset = parameters["dataset"]
    published = embeddings.COUNTS[dataset][AUTOENCODER_SPLIT[dataset]]
    return min(parameters["ae_images_limit"] or published, published)


def steps(parameters):
    """Autoencoder steps of one run: epochs over its training part (80%) of the published
    autoencoder split (or the smoke limit); the predictors are not counted."""
    training = math.ceil(0.8 * _autoencoder_images(parameters))
    return parameters["ae_epochs"] * math.ceil(training / parameters["batch_size"])


def step_key(parameters):
    return f"b4_{parameters['dataset']}"


def disk_bytes(parameters):
    """(kept, while running) bytes on disk of one run: the checkpoint (model and Adam's two
    moments, float32), and the target-feature cache when it fits cache_limit_gb (removed when
    the run completes), measured on the meta device (shapes only)."""
    p = parameters
    features = _feature_count(p["arch"], p["point"], SIZE[p["dataset"]]) if needs_loss_network(p["procedure"]) else 0
    count = _parameter_count(p["procedure"], p["dataset"], features, p["embedding_size"], p["variational"],
                             p["autoencoder"], p["feature_decoder_sigmoid"])
    cache = (_autoencoder_images(p), features)
    fits = size_gb(cache, CACHE_DTYPE) <= p["cache_limit_gb"]
    return 12 * count, math.prod(cache) * np.dtype(CACHE_DTYPE).itemsize * fits


# The grid asks for every run's disk before it starts (112 runs in the full B4 grid); the
# shapes repeat across runs, so each is measured once per process (0.35 s a run uncached).
def _feature_count(arch, point, size):
    """Numbers in one image's features at `point` of `arch`, for a size x size input."""
    from ..lossnets import architecture

    points = tuple(architecture(arch).points)  # its four points measured at once; a named extra point alone
    return _feature_counts(arch, points if point in points else (point,), size)[point]


@functools.lru_cache(maxsize=None)
def _feature_counts(arch, points, size):
    """{point: numbers in one image's features} of `arch` for a size x size input (meta device)."""
    from ..lossnets import LossNetwork

    with torch.device("meta"):
        features = LossNetwork(arch, points, weights=None)(torch.zeros(1, 3, size, size), check_range=False)
    return {point: math.prod(features[point].shape[1:]) for point in points}


@functools.lru_cache(maxsize=None)
def _parameter_count(*autoencoder):
    """Parameters of the autoencoder build_autoencoder(*autoencoder) makes (meta device)."""
    with torch.device("meta"):
        return sum(t.numel() for t in build_autoencoder(*autoencoder).parameters())


def check_parameters(parameters):
    """[(parameter, problem)]: the B4 notebook's choices (check_run's, each named), checked by the
    grid before any run."""
    from ..models.autoencoder import ACTIVATIONS
    from . import check_choices, not_negative, positive

    p = parameters
    problems = check_choices(p, {
        "procedure": tuple(PROCEDURES), "dataset": tuple(SIZE), "predictor": PREDICTORS,
        "predictor_selection": PREDICTOR_SELECTIONS, "split": SPLITS, "stl10_orientation": STL10_ORIENTATIONS,
        "vae_validation": VAE_VALIDATIONS, "loss_reduction": REDUCTIONS, "autoencoder": AUTOENCODERS,
        "predictor_loss": PREDICTOR_LOSSES, "predictor_activation": tuple(ACTIVATIONS),
        "svhn_padding": embeddings.SVHN_PADDINGS, "embedding_size": positive, "ae_epochs": positive,
        "mlp_epochs": positive, "kl_weight": not_negative, "lr": positive, "cache_limit_gb": not_negative,
        "ae_images_limit": not_negative, "labelled_limit": not_negative})
    if not problems and p.get("retrain_decoder"):
        try:
            check_retrainable(p["procedure"])
        except InputError as error:
            problems.append(("retrain_decoder", str(error)))
    return problems
