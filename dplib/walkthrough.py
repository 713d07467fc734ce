"""Helpers of notebooks/walkthrough.ipynb: a sample photograph, feature-map plots, distances."""

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from skimage import data as sample_data

from .data.distortions import DISTORTIONS, distort
from .losses import perceptual_distance


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
