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
dplib.extended (imported by `import dplib`) registers more torchvision networks (ConvNeXt,
ViT, Swin, RegNet, MobileNetV3) and a resolver for "timm:<model name>"; this module knows
nothing of them.
"""

import functools
import inspect
import os
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
import torchvision

from .errors import InputError, MissingData, WeightsUnavailable

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


# ----- the registry ------------------------------------------------------------------------

@dataclass
class Architecture:
    """A network that can serve as a loss network.

    build(weights, seed) -> nn.Module; points: {point name: node} in network order, a node
    being a Table II child index (int, of `children_of`: "features" or "" for the model) or a
    torchvision FX node name (str). layout "nhwc" marks channels-last outputs (Swin), turned
    into (N, C, h, w). classifier(weights, seed) -> the whole network (for its attributes),
    default build. imagenet: the torchvision model name whose IMAGENET1K_V1 metadata gives
    the top-1 accuracy, or None."""

    name: str
    build: Callable
    points: dict
    family: str = "other"
    children_of: str = None
    layout: str = "nchw"
    classifier: Callable = None
    imagenet: str = None
    paper: bool = False
    min_input: dict = field(default_factory=dict)  # {points tuple: px}, found by probing
    extra_points: dict = field(default_factory=dict)  # named points beyond the study's (register_points)

    @property
    def point_names(self):
        """The study's points (Table II's four for the paper's networks)."""
        return tuple(self.points)

    @property
    def all_points(self):
        """{name: node} of every point, the study's and the extra ones, in network order."""
        merged = {**self.points, **self.extra_points}
        if self.extra_points and all(isinstance(n, int) for n in merged.values()):
            return dict(sorted(merged.items(), key=lambda item: item[1]))
        return merged

    def check_points(self, points):
        """`points` as a tuple of point names in network order, or an error listing the valid ones."""
        if isinstance(points, str):
            points = (points,)
        points = tuple(points)
        known = self.all_points
        unknown = [p for p in points if p not in known]
        if unknown or not points:
            extra = f"; or the named points {', '.join(self.extra_points)}" if self.extra_points else ""
            raise InputError(f"unknown extraction point(s) {unknown or points!r} for {self.name}; choose from: "
                             f"{', '.join(self.points)}{extra}")
        return tuple(p for p in known if p in points)


REGISTRY = {}
RESOLVERS = {}  # name prefix -> resolver(name) -> Architecture: networks built on demand ("timm:<model>")


def register_resolver(prefix, resolver):
    """Names starting with `prefix` (e.g. "timm:") are resolved by `resolver(name)`, which
    returns (and registers) their Architecture. dplib.extended registers timm's this way, so
    this module knows nothing of the networks beyond the paper's."""
    RESOLVERS[prefix] = resolver


def register_architecture(name, build, points, family="other", layout="nchw", classifier=None, imagenet=None,
                          children_of=None, replace=False, paper=False, check=True):
    """Make `name` a loss network: LossNetwork(name, ...), PerceptualLoss(name, ...), the grid.

    build(weights, seed) returns the nn.Module (weights: None for random, "imagenet", or a
    state-dict path: the builder decides what it supports). points maps point names, in
    network order, to FX node names (see `list_points`) or, with children_of, to child
    indices. Checked now: the points must be nodes of the network (check=False skips building the
    network for that: dplib.extended's own, which its tests build, so `import dplib` stays fast)."""
    if name in REGISTRY and not replace:
        raise InputError(f"architecture {name!r} is already registered; pass replace=True to redefine it")
    if not isinstance(points, dict) or not points:
        raise InputError("points must map point names to nodes, e.g. {'early': 'features.1', 'late': 'features.7'}")
    kinds = {type(node) for node in points.values()}
    if kinds not in ({int}, {str}) or (kinds == {int}) != (children_of is not None):
        raise InputError(f"{name}: give FX node names (str), or child indices (int) together with children_of")
    if layout not in ("nchw", "nhwc"):
        raise InputError(f"layout must be 'nchw' or 'nhwc', got {layout!r}")
    build = _seeded(build, name, "build")
    classifier = _seeded(classifier, name, "classifier") if classifier else build
    entry = Architecture(name, build, dict(points), family, children_of, layout, classifier, imagenet, paper)
    if kinds == {str} and check:
        _check_nodes(entry, entry.build(None, 0))
    REGISTRY[name] = entry
    return entry


def _seeded(build, name, role):
    """`build` as build(weights, seed): a builder written build(weights) (the earlier contract)
    gets the weights only; one that takes neither is refused now, not inside LossNetwork."""
    try:
        signature = inspect.signature(build)
    except (TypeError, ValueError):  # a builtin or C callable: take it at its word
        return build
    for arguments in ((None, 0), (None,)):
        try:
            signature.bind(*arguments)
        except TypeError:
            continue
        return build if len(arguments) == 2 else functools.wraps(build)(lambda weights, seed: build(weights))
    raise InputError(f"{name}: {role} must take (weights, seed) or (weights), e.g. `def build(weights, seed): "
                     f"return MyNet()`; it takes {signature}")


def register_points(arch, points):
    """Name more points of a registered network, beyond the study's ({name: node}, nodes as its
    own points give them): usable in LossNetwork and PerceptualSimilarity, left out of the grid
    and the attributes. dplib.similarity names the lpips package's layers this way."""
    entry = architecture(arch)
    kinds = {type(node) for node in entry.points.values()}
    if {type(node) for node in points.values()} != kinds:
        raise InputError(f"{arch}'s points are {'child indices' if kinds == {int} else 'FX node names'}; "
                         f"give the new ones the same way")
    clashing = [name for name in points if name in entry.points and entry.points[name] != points[name]]
    if clashing:
        raise InputError(f"{arch} already has points named {clashing} at other nodes")
    entry.extra_points.update(points)
    return entry


def architecture(name):
    """The registry entry of `name` ("timm:<model>" reads a timm model), or an error listing them."""
    if name in REGISTRY:
        return REGISTRY[name]
    for prefix, resolve in RESOLVERS.items():
        if str(name).startswith(prefix):
            return resolve(name)
    raise InputError(f"unknown architecture {name!r}; registered: {', '.join(REGISTRY)}; any timm model as "
                     "'timm:<name>'; or dplib.register_architecture(...)")


def check_points(points, arch=None):
    """`points` as a tuple of point names in network order (the paper's names by default)."""
    if arch is not None:
        return architecture(arch).check_points(points)
    return Architecture("the paper's networks", None, dict.fromkeys(POINTS)).check_points(points)


def _node_names(module):
    from torchvision.models.feature_extraction import get_graph_node_names

    _, nodes = get_graph_node_names(module)
    # a module's name stands for its last node (create_feature_extractor accepts it)
    prefixes = {".".join(node.split(".")[:i]) for node in nodes for i in range(1, node.count(".") + 1)}
    return nodes, prefixes


def _check_nodes(entry, module):
    nodes, prefixes = _node_names(module)
    unknown = [n for n in entry.points.values() if n not in nodes and n not in prefixes]
    if unknown:
        raise InputError(f"{entry.name}: {unknown} are not nodes of the network; dplib.list_points({entry.name!r}) "
                         f"lists them (e.g. {', '.join(nodes[1:6])}, ...)")


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


def build_classifier(arch, weights="imagenet", seed=0):
    """The full torchvision classifier `arch` (any torchvision model name) with the requested
    weights: "imagenet" (torchvision's IMAGENET1K_V1, the paper's), None (random init,
    seeded) or a path to a local state dict (loaded with weights_only=True).
    """
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
    name = weight_name(arch, weights)
    if name is not None:
        return _load_state(model, _torchvision_state_dict(arch, name), arch)
    return load_weights(model, weights, arch)


def weight_names(arch):
    """torchvision's weight names for `arch` (a torchvision model, or a registered network's
    model): its pretrainings, e.g. ResNet-50's IMAGENET1K_V1 and IMAGENET1K_V2, ViT-B/16's
    IMAGENET1K_SWAG_LINEAR_V1. Empty for networks torchvision has no weights for."""
    name = REGISTRY[arch].imagenet if arch in REGISTRY else arch
    if name is None:
        return ()
    try:
        return tuple(n for n in torchvision.models.get_model_weights(name).__members__ if n != "DEFAULT")  # an alias
    except (ValueError, KeyError):
        return ()


def weight_name(arch, weights):
    """The torchvision weight name `weights` stands for: "imagenet" is IMAGENET1K_V1 (the
    paper's), a name of weight_names(arch) itself; None for None or a state-dict path."""
    if not isinstance(weights, str):
        return None
    if weights.lower() == "imagenet":
        return "IMAGENET1K_V1"
    return weights if weights in weight_names(arch) else None


def load_weights(model, path, name):
    """Load a local state dict (torch.load(..., weights_only=True)) into `model`."""
    path = Path(path)
    if not path.is_file():
        named = weight_names(name)  # () for a network torchvision has no weights for
        raise MissingData(f"weights file {path} does not exist, nor is it a torchvision weight name of {name}; give "
                          f"'imagenet', None, {'one of ' + ', '.join(named) + ', ' if named else ''}"
                          "or the path of a state dict saved with torch.save(model.state_dict())")
    return _load_state(model, torch.load(path, map_location="cpu", weights_only=True), name)


def _load_state(model, state, name):
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise InputError(f"weights do not fit {name}: {error}") from None
    # Auxiliary classifier heads are not part of a loss network: ignore them, nothing else.
    unexpected = [k for k in unexpected if not k.startswith(("aux1.", "aux2.", "AuxLogits."))]
    if missing or unexpected:
        raise InputError(f"weights do not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model


def imagenet_weights(arch, name="IMAGENET1K_V1"):
    """torchvision's weight entry `name` for `arch` (by default IMAGENET1K_V1, the weights the
    paper used); for a registered network, that of the torchvision model it names (None when
    there is none)."""
    model = REGISTRY[arch].imagenet if arch in REGISTRY else arch
    if model is None:
        return None
    return torchvision.models.get_model_weights(model)[name]


def _torchvision_state_dict(arch, name="IMAGENET1K_V1"):
    entry = imagenet_weights(arch, name)
    filename = os.path.basename(entry.url)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return entry.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        raise WeightsUnavailable(
            f"could not load the {name} weights of {arch} ({type(error).__name__}: {str(error)[:120]}). Offline, "
            f"download {entry.url} "
            f"on a connected machine and put it at {cache / filename} (the cache is set by TORCH_HOME)"
        ) from error


def _probe_min_input(model, points, limit=1024):
    """The smallest square input (px) for which every point of `model` gives a feature map:
    the network is run on sizes halving the search between 1 and `limit`."""
    def works(size):
        try:
            with torch.no_grad():
                out = model(torch.zeros(1, 3, size, size))
        except (RuntimeError, ValueError, IndexError, AssertionError):
            return False
        return all(torch.is_tensor(v) and v.numel() > 0 for v in out.values())

    if not works(limit):
        raise InputError(f"the network gives no features even for {limit} px inputs")
    low, high = 0, limit  # works(high) is true
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


# ----- the paper's 14, as registered architectures --------------------------------------------

FAMILIES = {
    "vgg11": "VGG", "vgg16": "VGG", "vgg16_bn": "VGG", "vgg19": "VGG",
    "resnet18": "ResNet", "resnet50": "ResNet", "resnext50_32x4d": "ResNet",
    "googlenet": "Inception", "inception_v3": "Inception",
    "efficientnet_b0": "EfficientNet", "efficientnet_b7": "EfficientNet",
    "alexnet": "Misc", "densenet121": "Misc", "squeezenet1_1": "Misc",
}

for _arch in ARCHITECTURES:
    REGISTRY[_arch] = Architecture(
        _arch, functools.partial(lambda arch, weights, seed: build_classifier(arch, weights, seed), _arch),
        dict(zip(POINTS, EXTRACTION_POINTS[_arch])), FAMILIES[_arch],
        children_of="features" if _arch in FEATURES_ARCHITECTURES else "", imagenet=_arch, paper=True)
    REGISTRY[_arch].classifier = REGISTRY[_arch].build
