"""Loss networks: the paper's 56 (14 torchvision architectures x 4 extraction points), and
any other network registered by name.

    >>> import dplib
    >>> net = dplib.LossNetwork("vgg16", points=("early", "late"))
    >>> features = net(images)          # {"early": (N,64,H,W), "late": (N,512,H/16,W/16)}

A loss network is a pretrained network cut after its deepest requested extraction point.
All requested points come out of ONE forward pass, and nothing after the deepest point is
kept or run. The network is frozen and always in eval mode, even inside a module put in
train mode: the original code let batch norm statistics drift while training.

Points are named nodes of an architecture in the registry (`register_architecture`):
  - the paper's 14 use Table II's child indices: the output after child i of `.features`
    (VGG, AlexNet, SqueezeNet, DenseNet, EfficientNet) or of the model itself;
  - any other network names torchvision FX nodes (`list_points` prints them with their
    output shapes; `torchvision.models.feature_extraction.create_feature_extractor` builds
    the truncated multi-output network).
The registry itself (what a network is, how one is registered and looked up, the paper's 14 as
Table II gives them, the torchvision classifiers and weights) is dplib.architectures, re-exported
here. This module then loads dplib.extended, which registers more torchvision networks
(ConvNeXt, ViT, Swin, RegNet, MobileNetV3), a resolver for "timm:<model name>" and the modules
DPLIB_NETWORKS names: whoever imports the loss networks has every registered network.
"""


import torch
from torch import nn

from .errors import InputError
from .architectures import (ARCHITECTURES, EXTRACTION_POINTS, FAMILIES, FEATURES_ARCHITECTURES, POINTS,  # noqa: F401
                       REGISTRY, RESOLVERS, Architecture, _node_names, architecture,
                       build_classifier, check_points, imagenet_weights, load_weights, register_architecture,
                       register_points, register_resolver, weight_name, weight_names)

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


def list_points(name, size=224, show=True):
    """Every candidate node of a registered network (FX node names, or Table II's children
    for the paper's 14) with its output shape for one size x size image: [(node, shape)]."""
    entry = architecture(name)
    model = entry.build(None, 0).eval()
    x = torch.rand(1, 3, size, size)
    rows = []
    with torch.no_grad():
        if entry.children_of is not None:
            parent = getattr(model, entry.children_of) if entry.children_of else model
            for index, (child_name, child) in enumerate(parent.named_children()):
                x = child(x)
                rows.append((f"{index} ({child_name}: {type(child).__name__})", tuple(x.shape[1:])))
        else:
            from torchvision.models.feature_extraction import create_feature_extractor

            nodes, _ = _node_names(model)
            outputs = create_feature_extractor(model, return_nodes={n: n for n in nodes[1:]})(x)
            rows = [(n, tuple(v.shape[1:]) if torch.is_tensor(v) else type(v).__name__) for n, v in outputs.items()]
    if show:
        for node, shape in rows:
            print(f"{node:60s} {shape}")
    return rows


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
        raise InputError(f"{name} must be an RGB batch of shape (N, 3, H, W), got {tuple(x.shape)}; "
                         "add a batch dimension with x[None] or repeat grey images to 3 channels")
    if check_range and x.numel():
        low, high = (v.item() for v in torch.aminmax(x.detach()))
        if high > 2.0:
            raise InputError(f"{name} has values up to {high:.3g}: it looks like 0-255 data, "
                             "but loss networks take RGB in [0, 1]; divide by 255")
        if low < -0.5:
            raise InputError(f"{name} has values down to {low:.3g}: it looks like [-1, 1] data, "
                             "but loss networks take RGB in [0, 1]; use (x + 1) / 2")


def _probe_min_input(model, points, limit=1024):
    """The smallest square input (px) for which every point of `model` gives a feature map: the
    network is run on sizes doubling from 1 until one works, then halving the search between the
    last two. Upwards, because large inputs are dear: a ViT-B/16 pass at 1024 px (4096 tokens) took
    30 s of a CPU core, and starting there made its first LossNetwork take 30 s to build."""
    def works(size):
        try:
            with torch.no_grad():
                out = model(torch.zeros(1, 3, size, size))
        except (RuntimeError, ValueError, IndexError, AssertionError):
            return False
        return all(torch.is_tensor(v) and v.numel() > 0 for v in out.values())

    high = 1
    while not works(high):
        if high >= limit:
            raise InputError(f"the network gives no features even for {limit} px inputs")
        high = min(2 * high, limit)
    low = high // 2  # works(high) is true, works(low) false (0: nothing smaller)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if works(middle) else (middle, high)
    return high


class LossNetwork(nn.Module):
    """A frozen, always-eval network cut after its deepest requested point.

    forward(x): x is an RGB batch (N, 3, H, W) in [0, 1]; returns {point: features} for
    every requested point, each (N, C, h, w), in one pass.

    arch: a registered name (`dplib.REGISTRY`: the paper's 14, dplib.extended's, your own)
    or "timm:<model>". points: point names of that architecture. normalize_input: subtract
    ImageNet's mean and divide by its std first (the authors' code did in Benchmarks 1 and 3,
    and fed raw [0, 1] images in 2 and 4). inception_transform: apply GoogLeNet's /
    Inception-v3's `transform_input` (torchvision does; the authors' code did not); ignored
    for the other architectures.
    """

    def __init__(self, arch, points="late", weights="imagenet", normalize_input=True, inception_transform=False,
                 seed=0):
        super().__init__()
        entry = architecture(arch)
        self.arch, self.layout = arch, entry.layout
        self.points = entry.check_points(points)
        self.normalize_input = normalize_input
        model = entry.build(weights, seed)
        known = entry.all_points
        nodes = [known[p] for p in self.points]
        if entry.children_of is not None:  # Table II: the output after child i
            parent = getattr(model, entry.children_of) if entry.children_of else model
            # Keep only what the deepest point needs: the rest is never built into this module.
            self.layers = nn.ModuleList(list(parent.children())[: max(nodes) + 1])
            self.point_at_layer = {}  # child index -> the point names there (two names may share a node)
            for node, point in zip(nodes, self.points):
                self.point_at_layer.setdefault(node, []).append(point)
            self.extractor = None
        else:  # FX nodes: a graph of the network holding only what the requested nodes need
            from torchvision.models.feature_extraction import create_feature_extractor

            self.layers, self.point_at_layer = None, None
            self.node_of = dict(zip(self.points, nodes))  # two point names may share a node
            self.extractor = create_feature_extractor(model.eval(), return_nodes=list(dict.fromkeys(nodes)))
        # GoogLeNet's and Inception-v3's ImageNet weights were trained on inputs rescaled by
        # torchvision's `transform_input`, which their forward() applies. The authors' code called
        # the children directly and so never applied it: inception_transform=False reproduces that.
        self.transform_input = inception_transform and getattr(model, "transform_input", False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)
        if arch in MIN_INPUT_SIZE and all(p in POINTS for p in self.points):
            self.min_input_size = max(MIN_INPUT_SIZE[arch][POINTS.index(p)] for p in self.points)
        else:
            if self.points not in entry.min_input:
                self.min_input_size = 0
                entry.min_input[self.points] = _probe_min_input(self._features, self.points)
            self.min_input_size = entry.min_input[self.points]

    def train(self, mode=True):
        # A loss network never trains: ignore mode, keep batch norm and dropout in eval.
        return super().train(False)

    def forward(self, x, check_range=True):
        check_images(x, check_range=check_range)
        if min(x.shape[-2:]) < self.min_input_size:
            raise InputError(f"input of {tuple(x.shape[-2:])} px is too small for {self.arch} at "
                             f"{'/'.join(self.points)}: it needs at least {self.min_input_size} px per side")
        # Out of place: the caller's tensor is never changed.
        if self.normalize_input and self.transform_input:
            x = (x - 0.5) / 0.5  # ImageNet normalisation then the inception transform, composed
        elif self.normalize_input:
            x = (x - self.mean) / self.std
        elif self.transform_input:
            x = _inception_transform(x)
        return self._features(x)

    def _features(self, x):
        if self.extractor is not None:
            by_node = self.extractor(x)
            features = {p: by_node[node] for p, node in self.node_of.items()}
            if self.layout == "nhwc":  # channels-last outputs (Swin) as (N, C, h, w)
                features = {p: f.permute(0, 3, 1, 2) for p, f in features.items()}
            return features
        features = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            for point in self.point_at_layer.get(i, ()):
                features[point] = x
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


# The networks beyond the paper's 14, timm's resolver and the modules DPLIB_NETWORKS names, registered
# whenever the registry loads, however it is reached (`dplib.LossNetwork`, `from dplib.lossnets import`).
from . import extended  # noqa: E402,F401
