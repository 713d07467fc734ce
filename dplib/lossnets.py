"""The 56 loss networks of the paper: 14 torchvision architectures x 4 extraction points.

    >>> import dplib
    >>> net = dplib.LossNetwork("vgg16", points=("early", "late"))
    >>> features = net(images)          # {"early": (N,64,H,W), "late": (N,512,H/16,W/16)}

A loss network is the pretrained classifier cut after its deepest requested extraction
point (Table II of the paper). All requested points come out of ONE forward pass, and
nothing after the deepest point is kept or run. The network is frozen and always in eval
mode, even inside a module put in train mode: the original code let batch norm
statistics drift while training the benchmark models.
"""

import os
import urllib.error
from pathlib import Path

import torch
from torch import nn
import torchvision

from .errors import MissingData, WeightsUnavailable

ARCHITECTURES = (
    "vgg11", "vgg16", "vgg16_bn", "vgg19",
    "resnet18", "resnet50", "resnext50_32x4d",
    "googlenet", "inception_v3",
    "efficientnet_b0", "efficientnet_b7",
    "alexnet", "densenet121", "squeezenet1_1",
)
POINTS = ("early", "semi_early", "mid", "late")

# Table II of the paper as indices: the extraction point is the output AFTER child number i.
# Architectures in FEATURES_ARCHITECTURES index `model.features`; the others index the
# model's own children (torchvision's definition order, which is their forward order).
EXTRACTION_POINTS = {
    "vgg11": (1, 4, 9, 19),            # 1st, 2nd, 4th, 8th ReLU
    "vgg16": (3, 8, 15, 29),           # 2nd, 4th, 7th, 13th ReLU
    "vgg16_bn": (5, 12, 22, 42),       # 2nd, 4th, 7th, 13th ReLU
    "vgg19": (3, 8, 17, 35),           # 2nd, 4th, 8th, 16th ReLU
    "resnet18": (2, 4, 5, 7),          # relu, layer1, layer2, layer4
    "resnet50": (2, 4, 5, 7),
    "resnext50_32x4d": (2, 4, 5, 7),
    "googlenet": (0, 5, 8, 15),        # conv1 (1st BN), inception3a, inception4a, inception5b
    "inception_v3": (2, 7, 9, 14),     # Conv2d_2b_3x3 (3rd BN), Mixed_5b, Mixed_5d, Mixed_6e
    "efficientnet_b0": (0, 1, 4, 7),   # stem (1st SiLU), 1st, 4th, 7th MBConv stage
    "efficientnet_b7": (0, 1, 4, 7),
    "alexnet": (1, 4, 7, 11),          # 1st, 2nd, 3rd, 5th ReLU
    "densenet121": (2, 4, 6, 10),      # relu0, denseblock1, denseblock2, denseblock4
    "squeezenet1_1": (1, 3, 7, 12),    # 1st ReLU, 1st, 4th, 8th Fire module
}
FEATURES_ARCHITECTURES = {
    "vgg11", "vgg16", "vgg16_bn", "vgg19", "efficientnet_b0", "efficientnet_b7",
    "alexnet", "densenet121", "squeezenet1_1",
}

# Smallest square input (pixels) each extraction point accepts; smaller inputs shrink a
# feature map to nothing. Measured once from the networks and checked by the tests.
MIN_INPUT_SIZE = {
    "vgg11": (1, 2, 4, 16), "vgg16": (1, 2, 4, 16), "vgg16_bn": (1, 2, 4, 16),
    "vgg19": (1, 2, 4, 16),
    "resnet18": (1, 1, 1, 1), "resnet50": (1, 1, 1, 1), "resnext50_32x4d": (1, 1, 1, 1),
    "googlenet": (1, 7, 15, 15), "inception_v3": (7, 27, 27, 43),
    "efficientnet_b0": (1, 1, 1, 1), "efficientnet_b7": (1, 1, 1, 1),
    "alexnet": (7, 15, 31, 31), "densenet121": (1, 1, 5, 29), "squeezenet1_1": (3, 5, 9, 17),
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_architecture(arch):
    if arch not in EXTRACTION_POINTS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}")


def check_points(points):
    """Return `points` as a tuple of point names, in network order, or raise listing the valid ones."""
    if isinstance(points, str):
        points = (points,)
    points = tuple(points)
    unknown = [p for p in points if p not in POINTS]
    if unknown or not points:
        raise ValueError(f"unknown extraction point(s) {unknown or points!r}; choose from: {', '.join(POINTS)}")
    return tuple(p for p in POINTS if p in points)


def check_images(x, name="input", check_range=True):
    """Raise a clear error unless `x` is a float RGB batch (N, 3, H, W) with values about [0, 1].

    Values a little outside [0, 1] (a network's output during training) are accepted;
    0-255 data and [-1, 1] data, the most common perceptual-loss mistakes, are not.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor with values in [0, 1], got dtype {x.dtype}; "
                        "for uint8 images use x.float() / 255")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be an RGB batch of shape (N, 3, H, W), got {tuple(x.shape)}; "
                         "add a batch dimension with x[None] or repeat grey images to 3 channels")
    if check_range and x.numel():
        low, high = (v.item() for v in torch.aminmax(x.detach()))
        if high > 2.0:
            raise ValueError(f"{name} has values up to {high:.3g}: it looks like 0-255 data, "
                             "but loss networks take RGB in [0, 1]; divide by 255")
        if low < -0.5:
            raise ValueError(f"{name} has values down to {low:.3g}: it looks like [-1, 1] data, "
                             "but loss networks take RGB in [0, 1]; use (x + 1) / 2")


def build_classifier(arch, weights="imagenet", seed=0):
    """The full torchvision classifier for `arch` with the requested weights.

    weights: "imagenet" (torchvision's IMAGENET1K_V1, the paper's), None (random init,
    seeded) or a path to a local state dict (loaded with weights_only=True).
    """
    check_architecture(arch)
    # GoogLeNet and Inception-v3 are built as torchvision builds them for their ImageNet
    # weights (no auxiliary heads, the input transform those weights were trained with),
    # so that random and pretrained loss networks are the same network.
    kwargs = {}
    if arch in ("googlenet", "inception_v3"):
        kwargs = dict(aux_logits=False, transform_input=True, init_weights=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    if weights is None:
        return model
    if isinstance(weights, str) and weights.lower() == "imagenet":
        state = _imagenet_state_dict(arch)
    else:
        path = Path(weights)
        if not path.is_file():
            raise MissingData(f"weights file {path} does not exist; give weights='imagenet', None "
                                    "or the path of a state dict saved with torch.save(model.state_dict())")
        state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise ValueError(f"weights do not fit {arch}: {error}") from None
    # Auxiliary classifier heads are not part of a loss network: ignore them, nothing else.
    unexpected = [k for k in unexpected if not k.startswith(("aux1.", "aux2.", "AuxLogits."))]
    if missing or unexpected:
        raise ValueError(f"weights do not fit {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model


def imagenet_weights(arch):
    """torchvision's IMAGENET1K_V1 weight entry for `arch` (the weights the paper used)."""
    check_architecture(arch)
    return torchvision.models.get_model_weights(arch)["IMAGENET1K_V1"]


def _imagenet_state_dict(arch):
    entry = imagenet_weights(arch)
    filename = os.path.basename(entry.url)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return entry.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        raise WeightsUnavailable(
            f"could not load the ImageNet weights of {arch} ({type(error).__name__}: {str(error)[:120]}). Offline, "
            f"download {entry.url} "
            f"on a connected machine and put it at {cache / filename} (the cache is set by TORCH_HOME)"
        ) from error


class LossNetwork(nn.Module):
    """A frozen, always-eval torchvision network cut after its deepest requested point.

    forward(x): x is an RGB batch (N, 3, H, W) in [0, 1]; returns {point: features} for
    every requested point, each (N, C, h, w), in one pass.

    normalize_input: subtract ImageNet's mean and divide by its std first (the authors' code
    did in Benchmarks 1 and 3, and fed raw [0, 1] images in 2 and 4). inception_transform:
    apply GoogLeNet's / Inception-v3's `transform_input` (torchvision does; the authors' code
    did not); ignored for the other architectures.
    """

    def __init__(self, arch, points="late", weights="imagenet", normalize_input=True, inception_transform=False,
                 seed=0):
        super().__init__()
        check_architecture(arch)
        self.arch = arch
        self.points = check_points(points)
        self.normalize_input = normalize_input
        classifier = build_classifier(arch, weights=weights, seed=seed)
        children = list(classifier.features if arch in FEATURES_ARCHITECTURES else classifier.children())
        indices = [EXTRACTION_POINTS[arch][POINTS.index(p)] for p in self.points]
        # Keep only what the deepest point needs: the rest is never built into this module.
        self.layers = nn.ModuleList(children[: max(indices) + 1])
        self.point_at_layer = {i: p for i, p in zip(indices, self.points)}
        self.min_input_size = max(MIN_INPUT_SIZE[arch][POINTS.index(p)] for p in self.points)
        # GoogLeNet's and Inception-v3's ImageNet weights were trained on inputs rescaled by
        # torchvision's `transform_input`, which their forward() applies. The authors' code called
        # the children directly and so never applied it: inception_transform=False reproduces that.
        self.transform_input = inception_transform and getattr(classifier, "transform_input", False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode=True):
        # A loss network never trains: ignore mode, keep batch norm and dropout in eval.
        return super().train(False)

    def forward(self, x, check_range=True):
        check_images(x, check_range=check_range)
        if min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(f"input of {tuple(x.shape[-2:])} px is too small for {self.arch} at "
                             f"{'/'.join(self.points)}: it needs at least {self.min_input_size} px per side")
        # Out of place: the caller's tensor is never changed.
        if self.normalize_input and self.transform_input:
            x = (x - 0.5) / 0.5  # ImageNet normalisation then the inception transform, composed
        elif self.normalize_input:
            x = (x - self.mean) / self.std
        elif self.transform_input:
            x = _inception_transform(x)
        features = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.point_at_layer:
                features[self.point_at_layer[i]] = x
        return features

    def extra_repr(self):
        return f"arch={self.arch!r}, points={self.points}"


def _inception_transform(x):
    # torchvision's GoogLeNet/Inception-v3 `transform_input`: ImageNet-normalised input to
    # the (x - 0.5) / 0.5 scaling their ported weights were trained with.
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * std + mean - 0.5) / 0.5


def points_table():
    """Table II as rows: (arch, point, child index, child name)."""
    rows = []
    for arch in ARCHITECTURES:
        model = build_classifier(arch, weights=None)
        parent = model.features if arch in FEATURES_ARCHITECTURES else model
        names = [n for n, _ in parent.named_children()]
        for point, index in zip(POINTS, EXTRACTION_POINTS[arch]):
            child = dict(parent.named_children())[names[index]]
            rows.append((arch, point, index, f"{names[index]} ({type(child).__name__})"))
    return rows
