"""The registry of networks that can serve as loss networks, by name: what a network is
(`Architecture`: how to build it, its extraction points, its family), how one is registered
(`register_architecture`, `register_resolver` for names built on demand such as "timm:<model>")
and looked up (`architecture`), and the torchvision classifiers and weights they are built from.

The paper's 14 (Table II) are registered here, first; dplib.lossnets then loads dplib.extended,
whose networks register here as a network of one's own does, so that however the registry is
reached it holds them all. This module knows none of those beyond the 14.
"""

import functools
import inspect
import os
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torchvision

from .errors import InputError, MissingData, WeightsUnavailable

POINTS = ("early", "semi_early", "mid", "late")  # the paper's extraction points, in network order
ARCHITECTURES = (
    "vgg11", "vgg16", "vgg16_bn", "vgg19",
    "resnet18", "resnet50", "resnext50_32x4d",
    "googlenet", "inception_v3",
    "efficientnet_b0", "efficientnet_b7",
    "alexnet", "densenet121", "squeezenet1_1",
)

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
