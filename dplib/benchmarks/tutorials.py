"""Helpers of notebooks/walkthrough.ipynb and the tutorials (notebooks/tutorial_*.ipynb): a
sample photograph, feature-map plots, distances, and the tiny live versions of the four
benchmarks a lecture can run on a laptop CPU in under a minute each (random weights and the
fixture datasets: they show how each benchmark works, not the paper's numbers)."""

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from skimage import data as sample_data

from ..data.distortions import DISTORTIONS, distort
from ..losses import perceptual_distance


def sample_image(size=224):
    """scikit-image's astronaut photograph as a (1, 3, size, size) batch in [0, 1]."""
    image = torch.from_numpy(sample_data.astronaut()).permute(2, 0, 1).float()[None] / 255
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def plot_feature_maps(image, features):
    """The image and, per extraction point, its channel-mean activation map."""
    figure, axes = plt.subplots(1, len(features) + 1, figsize=(3 * (len(features) + 1), 3))
    axes[0].imshow(image[0].permute(1, 2, 0).cpu().numpy())
    axes[0].set_title("input")
    for axis, (point, f) in zip(axes[1:], features.items()):
        axis.imshow(f[0].mean(dim=0).detach().cpu().numpy(), cmap="magma")
        axis.set_title(f"{point}: {f.shape[1]} x {f.shape[2]} x {f.shape[3]}")
    for axis in axes:
        axis.axis("off")
    figure.tight_layout()
    return figure


def distortions(image, strengths=(0.2, 0.6), seed=0):
    """Every distortion of dplib.data.distortions at each strength: {"blur 0.2": batch, ...}."""
    return {f"{kind} {s}": distort(image.cpu(), kind, s, seed=seed).to(image.device)
            for kind in DISTORTIONS for s in strengths}


@torch.no_grad()
def distance_table(network, image, distorted):
    """Eq. 1 distance of each distorted image to `image`, one column per extraction point."""
    reference = network(image)
    rows = {}
    for name, other in distorted.items():
        features = network(other)
        rows[name] = {p: perceptual_distance({p: reference[p]}, {p: features[p]}).item() for p in reference}
    return pd.DataFrame.from_dict(rows, orient="index")


# ----- tiny live benchmarks for the tutorials -------------------------------------------------

def super_resolution_with_two_losses(root, arch="vgg16", point="early", steps=30, scale=4, crop=96, seed=0,
                                     device="cpu"):
    """Train the same transformation network twice from the same start, with a pixel-wise MSE
    and with the feature loss (Eq. 3) of `arch` at `point`, for `steps` steps on fixture
    pairs. Returns {"pixel": model, "perceptual": model} and one test pair (hr, lr)."""
    import random

    from . import b2
    from ..data import superres
    from ..lossnets import LossNetwork
    from ..models import TransformerNet
    from ..train import fit

    pairs = superres.CocoPairs(root, "train", count=12, scale=scale, crop=crop, crop_mode="resize_center",
                               degradation="pil", seed=seed)  # the Benchmark 2 notebook's pairs
    network = LossNetwork(arch, point, weights=None, normalize_input=False, seed=seed).to(device)
    losses = {"pixel": lambda model, batch: F.mse_loss(model(batch[1].to(device)), batch[0].to(device)),
              "perceptual": b2.make_loss(network, scale, device)}
    models = {}
    for name, loss_fn in losses.items():
        random.seed(seed)
        torch.manual_seed(seed)
        model = TransformerNet(scale).to(device)
        fit(model, loss_fn, pairs, lambda m: 0.0, iterations=steps, batch_size=4, device=device, seed=seed,
            validate_every=steps, progress=False)
        models[name] = model.eval()
    _, hr, lr = superres.test_images(root, "Set5", scale, crop, "whole", "pil")[0]
    return models, (hr, lr)


def plot_super_resolution(models, pair):
    """Low resolution, each model's output, and the truth, side by side."""
    hr, lr = pair
    with torch.no_grad():
        outputs = {name: model(lr[None].to(next(model.parameters()).device))[0].cpu() for name, model in models.items()}
    panels = {"low resolution": lr, **{f"{name} loss": out for name, out in outputs.items()}, "truth": hr}
    figure, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2))
    for axis, (title, image) in zip(axes, panels.items()):
        axis.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        axis.set_title(title)
        axis.axis("off")
    figure.tight_layout()
    return figure


def embeddings_of_an_autoencoder(root, dataset="svhn", arch="alexnet", point="semi_early", epochs=2, seed=0,
                                 device="cpu"):
    """Train the benchmark's autoencoder (I-I-PS, Eq. 6) on a fixture dataset for `epochs`
    epochs and embed its labelled `train` images: (embeddings (N, 64), labels (N,))."""
    from . import b4
    from ..data import embeddings
    from ..lossnets import LossNetwork
    from ..train import fit

    # the benchmark's choices, written out: the released autoencoder, z 64, Eq. 6 summed per
    # image, no sigmoid on the features, SVHN reflection-padded, STL-10 upright
    torch.manual_seed(seed)
    images, _ = embeddings.load_split(dataset, root, embeddings.AUTOENCODER_SPLIT[dataset], orientation="upright")
    labelled, labels = embeddings.load_split(dataset, root, "train", orientation="upright")
    network = LossNetwork(arch, point, weights=None, normalize_input=False, seed=seed).to(device)
    model = b4.build_autoencoder("I-I-PS", dataset, 0, 64, False, "released", False).to(device)
    data = embeddings.Images(dataset, images, torch.full((len(images),), -1), "reflect")
    loss_fn = b4.make_loss("I-I-PS", dataset, network, device, "sum", 1.0, False)
    fit(model, loss_fn, data, b4.make_validation(loss_fn, data, seed), epochs=epochs, batch_size=16, mode="min",
        device=device, seed=seed, progress=False)
    return b4.embed(model, "I-I-PS", dataset, labelled, network, device, False, "reflect"), labels


def plot_embeddings(embedded, labels, title=""):
    """The embeddings' first two principal components, one colour per class."""
    centred = embedded - embedded.mean(dim=0)
    _, _, basis = torch.linalg.svd(centred, full_matrices=False)
    points = (centred @ basis[:2].T).numpy()                              # (N, 2)
    figure, axis = plt.subplots(figsize=(4.5, 4))
    scatter = axis.scatter(points[:, 0], points[:, 1], c=labels.numpy(), cmap="tab10", s=14)
    axis.legend(*scatter.legend_elements(), title="class", fontsize=7, loc="best")
    axis.set(title=title, xlabel="first principal component", ylabel="second")
    figure.tight_layout()
    return figure


def plot_ranks(ranks, column="all"):
    """Table III as bars: each architecture's average rank (1 is best), best first."""
    ordered = ranks[column].sort_values()
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.barh(ordered.index[::-1], ordered.values[::-1], color=["tab:green" if a.startswith("vgg") and "bn" not in a
                                                                 else "tab:gray" for a in ordered.index[::-1]])
    axis.set(xlabel=f"average rank over the benchmarks ({column}; 1 is best)", title="Table III: VGG without batch "
             "norm (green) ranks best")
    figure.tight_layout()
    return figure
