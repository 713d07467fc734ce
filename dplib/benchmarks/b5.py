"""Benchmark 5 (beyond the paper): image denoising, the worked example of a task of one's own.

Made with `dplib new-benchmark` and then given its task: a DnCNN (Zhang et al. 2017, "Beyond a
Gaussian Denoiser": 17 3x3 convolutions of 64 channels, batch norm in the middle ones, the
network predicts the noise and subtracts it) removes additive white Gaussian noise of standard
deviation `sigma` / 255 (DnCNN's sigma 25 by default) from RGB images. It trains with the
feature loss (Eq. 3) of one loss network plus a pixel MSE term on Benchmark 2's seeded COCO
sample (the same images, crops and seed: one download serves both), keeps the model with the
best validation PSNR, and is tested on Benchmark 2's Set5, Set14 and BSD100, whole images, the
noise drawn with a seed per image. Scores: PSNR and SSIM in RGB (data range 1, the outputs
clamped to [0, 1]; dplib.metrics) and the perceptual distance of output to clean image under
the paper's Benchmark 1 metric (Eq. 1, AlexNet at its four points, ImageNet input scaling:
lower is better). PROTOCOL.md, section "Benchmark 5", states every choice.
"""

import numpy as np
import torch
from torch import nn

from ..data import superres
from ..data.superres import TEST_SETS, test_images
from ..losses import feature_loss
from ..metrics import psnr, ssim
from . import Benchmark, Score
from .record import score_row
from ..errors import InputError

SETS = tuple(name.lower() for name in TEST_SETS)
BENCHMARK = Benchmark(
    name="b5", title="image denoising", module="dplib.benchmarks.b5", notebook="notebooks/b5_denoising.ipynb",
    params="params/b5.yaml", datasets=("superres",),
    scores=(Score("psnr", "higher", SETS, label="dB, RGB, outputs clamped to [0, 1]"),
            Score("ssim", "higher", SETS, label="RGB, 11 x 11 Gaussian window"),
            Score("distance", "lower", SETS, label="Eq. 1 distance to the clean image (AlexNet, four points)")),
    headline="b5 psnr bsd100",
)
SIMILARITY = ("alexnet", ("early", "semi_early", "mid", "late"))  # the distance's network and points (Eq. 1)


def distance_weights(weights):
    """The distance network's weights: ImageNet's always (the metric is fixed, whatever the loss
    network's pretraining), or seeded random ones where the run has none (offline, smoke)."""
    return None if weights is None else "imagenet"


class DnCNN(nn.Module):
    """(N, 3, H, W) noisy -> (N, 3, H, W) denoised: x - f(x), f the noise estimate of `depth`
    3x3 convolutions (conv+ReLU, depth-2 x conv+BN+ReLU, conv), as Zhang et al. 2017."""

    def __init__(self, depth=17, channels=64):
        super().__init__()
        layers = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, 3, 3, padding=1))
        self.noise = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.noise(x)


def check_sigma(sigma):
    if not 0 < sigma <= 255:
        raise InputError(f"sigma is the noise's standard deviation on the 0-255 scale (DnCNN: 15, 25, 50); got {sigma}")


def add_noise(clean, sigma, generator=None):
    """clean + N(0, (sigma/255)^2), not clipped (as DnCNN's training and test inputs). Training
    draws on clean's device; a (CPU) generator gives the same noise on any device."""
    if generator is None:  # the training step: no copy from the host
        return clean + torch.randn_like(clean) * (sigma / 255.0)
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device="cpu").to(clean.device)
    return clean + noise * (sigma / 255.0)


def image_generator(seed, index):
    """The generator of test or validation image `index`'s noise: the same noise for every run."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def make_loss(loss_network, sigma, pixel_weight):
    """loss(model, clean batch) = Eq. 3 feature loss of output vs clean + pixel_weight * MSE."""

    def loss_fn(model, batch):
        clean = batch.to(next(model.parameters()).device)   # (N, 3, crop, crop)
        output = model(add_noise(clean, sigma))
        # a training network's output may leave [0, 1] for a while: not checked (as PerceptualLoss)
        loss = feature_loss(loss_network(output, check_range=False), loss_network(clean))
        return loss + pixel_weight * torch.mean((output - clean) ** 2) if pixel_weight else loss

    return loss_fn


def make_validation(dataset, sigma, seed, device, batch_size):
    """validate(model) -> {"score": mean RGB PSNR}: the validation images with fixed noise."""
    clean = torch.stack([dataset[i] for i in range(len(dataset))])
    noisy = torch.stack([add_noise(c, sigma, image_generator(seed, i)) for i, c in enumerate(clean)])

    @torch.no_grad()
    def validate(model):
        scores = []
        for start in range(0, len(clean), batch_size):
            output = model(noisy[start:start + batch_size].to(device)).float().clamp(0, 1).cpu()
            scores += list(psnr(output, clean[start:start + batch_size], channel="rgb"))
        return {"score": float(np.mean(scores))}

    return validate


@torch.no_grad()
def evaluate(model, root, sigma, seed, device, arch, point, distance_network, sets=TEST_SETS):
    """PSNR, SSIM and perceptual distance per test set (means over whole images) as score rows,
    plus one (noisy, output, clean) example per set."""
    model.eval()
    rows, examples = [], {}
    for name in sets:
        values = {"psnr": [], "ssim": [], "distance": []}
        for index, (_, clean, _) in enumerate(test_images(root, name, 1, 0, "whole", "torch")):
            noisy = add_noise(clean[None], sigma, image_generator(seed, index))
            output = model(noisy.to(device)).float().clamp(0, 1).cpu()  # (1, 3, H, W)
            values["psnr"].append(psnr(output, clean[None], channel="rgb")[0])
            values["ssim"].append(ssim(output, clean[None], channel="rgb")[0])
            values["distance"].append(distance_network(output.to(device), clean[None].to(device)).item())
            if index == 0:
                examples[name] = (noisy[0].clamp(0, 1), output[0], clean)
        note = f"{len(values['psnr'])} whole images, sigma {sigma:g}/255, noise seeded per image"
        rows += [score_row("b5", score, np.mean(v), dataset=name.lower(), arch=arch, point=point, note=note)
                 for score, v in values.items()]
    return rows, examples


def plot_examples(examples, title=""):
    """One row per test set: noisy input, output, clean image (Benchmark 2's figure)."""
    from .b2 import plot_examples as plot_rows

    return plot_rows(examples, title, labels=("noisy", "output", "clean"))


# ----- what the grid asks of every benchmark module -------------------------------------------

def data_needs(parameters):
    """Benchmark 2's seeded COCO sample (the same draw: seed, counts, crop) and its test sets."""
    p = parameters
    return {"superres": superres.needs(p["seed"], p["train_images"], p["val_images"], p["crop"], "resize_center")}


def steps(parameters):
    return parameters["iterations"]


def other_networks(parameters):
    """[(arch, weights)] a run loads beside its loss network: the distance's AlexNet (for the
    pre-flight check and `dplib weights download`)."""
    return [(SIMILARITY[0], distance_weights(parameters["weights"]))]


def step_key(parameters):
    return "b5"


def build_model(parameters):
    """The model a run trains, from its notebook parameters: the DnCNN (depth)."""
    return DnCNN(parameters["depth"])


def disk_bytes(parameters):
    """(kept, while running) bytes of one run: the checkpoint (model and Adam's moments, float32)."""
    with torch.device("meta"):
        count = sum(p.numel() for p in build_model(parameters).parameters())
    return int(12 * count), 0


def check_parameters(parameters):
    """[(parameter, problem)]: the B5 notebook's choices, checked by the grid before any run."""
    from . import check_choices, not_negative, positive

    return check_choices(parameters, {"sigma": check_sigma, "iterations": positive, "lr": positive,
                                      "val_every": positive, "train_images": positive, "val_images": positive,
                                      "crop": positive, "depth": positive, "pixel_weight": not_negative})
