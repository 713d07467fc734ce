"""Attributes of the 56 loss networks (Table I of the paper, and the per-point attributes
of its supplementary material), measured from the networks themselves.

Where the measured values differ from the printed Table I (kept unchanged in
`results/paper/architectures.csv`):
- ImageNet top-1 is torchvision's IMAGENET1K_V1 metadata, read without downloading. It
  equals Table I for 13 of 14 networks; EfficientNet-B7's metadata says 84.122 (measured
  at its native 600 px) where Table I prints 78.642.
- MFLOPs are millions of multiply-adds of one 224x224 forward pass, counted by torch's
  FLOP counter (convolutions and matrix products; 2 FLOPs = 1 multiply-add). Table I is
  0.4-3% higher, probably because the paper's tool also counted pooling, activations and
  normalisation. Inception-v3's 2850 matches neither a 224 px nor a 299 px input.
- depth follows footnote 2: the largest number of convolutions and matrix products on
  any path from the input to the point (of parallel branches only the longest counts),
  traced through a real forward pass. It equals Table I for 11 of 14 networks; it gives
  48 for Inception-v3 (Table I: 49) and 82 / 274 for EfficientNet-B0 / B7 (Table I: 81 /
  271), counts the paper does not explain; the traced values are reported as they are.
- skip connections and branching are properties of the architecture as designed, stated
  here per family; 1x1 convolutions and batch norm are detected from the modules, so
  GoogLeNet (torchvision's has batch norm) and others may differ from the printed marks.
"""

import functools
import hashlib
import os
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakTensorKeyDictionary

from .atomic import atomic_write
from .progress import tqdm
from .lossnets import ARCHITECTURES, LossNetwork, architecture, imagenet_weights
from .errors import InputError

# Design facts: residual/dense shortcuts, and parallel paths that are merged again (the paper's
# 14, and the networks dplib.extended registers); None for networks registered without them.
SKIP_CONNECTIONS = {"resnet18", "resnet50", "resnext50_32x4d", "efficientnet_b0", "efficientnet_b7", "densenet121",
                    "convnext_tiny", "vit_b_16", "swin_t", "regnet_y_400mf", "mobilenet_v3_large"}
BRANCHING = {"resnext50_32x4d", "googlenet", "inception_v3", "squeezenet1_1"}
DESIGN_KNOWN = set(ARCHITECTURES) | {"convnext_tiny", "vit_b_16", "swin_t", "regnet_y_400mf", "mobilenet_v3_large"}

MIN_CLASSIFIER_INPUT = 75  # the smallest image every whole classifier accepts (Inception-v3)
_MATRIX_PRODUCTS = {"convolution", "addmm", "mm", "bmm", "linear", "_convolution", "matmul"}


class _DepthTracer(TorchDispatchMode):
    """Follows every tensor through the forward pass, carrying the largest number of
    convolutions / matrix products on a path from the input (footnote 2's depth)."""

    def __init__(self):
        super().__init__()
        self.depth = WeakTensorKeyDictionary()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        depth = max((self.depth.get(t, 0) for t in inputs), default=0)
        if func.overloadpacket.__name__ in _MATRIX_PRODUCTS:
            depth += 1
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.depth[t] = max(depth, self.depth.get(t, 0))
        return out


def _measure(module, x, **kwargs):
    """(multiply-adds, depth, output) of one forward pass of `module` on `x`."""
    tracer = _DepthTracer()
    with torch.no_grad(), FlopCounterMode(display=False) as flops, tracer:
        out = module(x, **kwargs)
        leaves = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        depth = max(tracer.depth.get(t, 0) for t in leaves)
    return flops.get_total_flops() / 2, depth, out


def _cache_path(arch, input_size):
    import torchvision

    folder = Path(os.environ.get("DPLIB_CACHE", Path.home() / ".cache" / "dplib"))
    # the code that measures is part of the key: a changed measurement is never read from an old cache
    code = hashlib.sha1(Path(__file__).read_bytes() + (Path(__file__).parent / "lossnets.py").read_bytes() +
                        (Path(__file__).parent / "extended.py").read_bytes())
    safe = arch.replace(":", "_").replace("/", "_")
    return folder / (f"attributes_{safe}_{input_size}px_torch{torch.__version__}_torchvision{torchvision.__version__}_"
                     f"{code.hexdigest()[:10]}.csv")


def pretraining(arch, weights):
    """What a loss network was pretrained on, for the rows of a pretraining grid: its weight
    name, the data (torchvision's documentation of each: SWAG trunks were trained weakly
    supervised on 3.6B Instagram images, then the head or the whole network on ImageNet-1K;
    the others on ImageNet-1K), its ImageNet-1K top-1 and its training recipe where torchvision
    gives them. None and state-dict paths: the name alone."""
    from .lossnets import weight_name

    name = weight_name(arch, weights)
    if name is None:
        return dict(pretraining="random" if weights is None else str(weights), pretraining_data="",
                    pretraining_top1=float("nan"), pretraining_recipe="")
    meta = imagenet_weights(arch, name).meta
    data = "Instagram-3.6B (SWAG), then ImageNet-1K" if "SWAG" in name else "ImageNet-1K"
    return dict(pretraining=name, pretraining_data=data,
                pretraining_top1=meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1", float("nan")),
                pretraining_recipe=meta.get("recipe", ""))


def _pandas():
    from .extras import require

    require("the attributes table", "pandas")
    import pandas

    return pandas


@functools.lru_cache(maxsize=8)
def attributes_table(input_size=224, cache=True, architectures=ARCHITECTURES):
    """One row per architecture x extraction point (the paper's 56 by default; any registered
    networks with `architectures`) with the attributes the paper analyses: architecture-wide
    (family, imagenet_top1, parameters, depth, mflops, skip_connections, branching, conv1x1,
    batch_norm) and per point (point_parameters, point_depth, point_mflops,
    parameter_fraction, channels, features). Measured with random weights (the attributes do
    not depend on weight values) on one `input_size` x `input_size` image. Each network's
    rows are cached on disk per input size and torch/torchvision version ($DPLIB_CACHE,
    default ~/.cache/dplib); cache=False measures anew.
    """
    pd = _pandas()
    if input_size < MIN_CLASSIFIER_INPUT:
        raise InputError(f"attributes_table needs input_size >= {MIN_CLASSIFIER_INPUT} (Inception-v3's whole "
                         f"network does not fit a smaller image), got {input_size}; the paper uses 224")
    for arch in architectures:
        architecture(arch)  # an unknown name stops here
    todo = [a for a in architectures if not (cache and _cache_path(a, input_size).is_file())]
    if cache and todo:
        print(f"measuring the attributes of {len(todo)} network(s) at {input_size} px once (seconds: shapes only); "
              f"cached in {_cache_path(todo[0], input_size).parent} ($DPLIB_CACHE)", flush=True)
    tables = []
    for arch in tqdm(architectures, desc="attributes", unit="network", disable=not todo):
        path = _cache_path(arch, input_size)
        if arch not in todo:
            tables.append(pd.read_csv(path))
            continue
        tables.append(_measure_network(arch, input_size))
        if cache:
            with atomic_write(path) as f:
                tables[-1].to_csv(f, index=False)
    return pd.concat(tables, ignore_index=True)


def _measure_network(arch, input_size, device="meta"):
    """The attribute rows of one network, one per extraction point. On the meta device the
    networks are built and run as shapes only (VGG-16: 0.1 s instead of 7 s on a CPU; the same
    numbers, tested); a network that needs real values (a custom one calling .item()) is
    measured on the CPU."""
    pd = _pandas()
    if device == "meta":
        try:
            with torch.device("meta"):
                return _measure_network(arch, input_size, device=None)
        except (RuntimeError, NotImplementedError):
            pass
    entry = architecture(arch)
    x = torch.rand(1, 3, input_size, input_size)
    classifier = entry.classifier(None, 0).eval()
    macs, depth, _ = _measure(classifier, x)
    total_params = sum(p.numel() for p in classifier.parameters())
    modules = list(classifier.modules())
    weights = imagenet_weights(arch)
    arch_row = dict(
        arch=arch,
        family=entry.family,
        imagenet_top1=weights.meta["_metrics"]["ImageNet-1K"]["acc@1"] if weights else float("nan"),
        parameters=total_params,
        depth=depth,
        mflops=macs / 1e6,
        skip_connections=arch in SKIP_CONNECTIONS if arch in DESIGN_KNOWN else None,
        branching=arch in BRANCHING if arch in DESIGN_KNOWN else None,
        conv1x1=any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) for m in modules),
        batch_norm=any(isinstance(m, torch.nn.BatchNorm2d) for m in modules),
    )
    rows = []
    for point in entry.point_names:
        net = LossNetwork(arch, points=point, weights=None)
        point_macs, point_depth, features = _measure(net, x, check_range=False)
        point_params = sum(p.numel() for p in net.parameters())
        _, channels, height, width = features[point].shape
        rows.append(dict(arch_row, point=point, point_parameters=point_params, point_depth=point_depth,
                         point_mflops=point_macs / 1e6, parameter_fraction=point_params / total_params,
                         channels=channels, features=channels * height * width))
    return pd.DataFrame(rows)
