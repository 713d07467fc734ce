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

import pandas as pd
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakTensorKeyDictionary

from .atomic import atomic_write
from .progress import tqdm
from .lossnets import ARCHITECTURES, POINTS, LossNetwork, build_classifier, imagenet_weights

FAMILIES = {
    "vgg11": "VGG", "vgg16": "VGG", "vgg16_bn": "VGG", "vgg19": "VGG",
    "resnet18": "ResNet", "resnet50": "ResNet", "resnext50_32x4d": "ResNet",
    "googlenet": "Inception", "inception_v3": "Inception",
    "efficientnet_b0": "EfficientNet", "efficientnet_b7": "EfficientNet",
    "alexnet": "Misc", "densenet121": "Misc", "squeezenet1_1": "Misc",
}
# Design facts: residual/dense shortcuts, and parallel paths that are merged again.
SKIP_CONNECTIONS = {"resnet18", "resnet50", "resnext50_32x4d", "efficientnet_b0", "efficientnet_b7", "densenet121"}
BRANCHING = {"resnext50_32x4d", "googlenet", "inception_v3", "squeezenet1_1"}

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


def _measure(module, x):
    """(multiply-adds, depth, output) of one forward pass of `module` on `x`."""
    tracer = _DepthTracer()
    with torch.no_grad(), FlopCounterMode(display=False) as flops, tracer:
        out = module(x)
        leaves = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        depth = max(tracer.depth.get(t, 0) for t in leaves)
    return flops.get_total_flops() / 2, depth, out


def _cache_path(input_size):
    import torchvision

    folder = Path(os.environ.get("DPLIB_CACHE", Path.home() / ".cache" / "dplib"))
    # the code that measures is part of the key: a changed measurement is never read from an old cache
    code = hashlib.sha1(Path(__file__).read_bytes() + (Path(__file__).parent / "lossnets.py").read_bytes())
    return folder / (f"attributes_{input_size}px_torch{torch.__version__}_torchvision{torchvision.__version__}_"
                     f"{code.hexdigest()[:10]}.csv")


@functools.lru_cache(maxsize=4)
def attributes_table(input_size=224, cache=True):
    """One row per architecture x extraction point (56 rows) with the attributes the paper
    analyses: architecture-wide (family, imagenet_top1, parameters, depth, mflops,
    skip_connections, branching, conv1x1, batch_norm) and per point (point_parameters,
    point_depth, point_mflops, parameter_fraction, channels, features). Measured with
    random weights (the attributes do not depend on weight values) on one
    `input_size` x `input_size` image. The table is cached on disk per input size and
    torch/torchvision version ($DPLIB_CACHE, default ~/.cache/dplib); cache=False measures anew.
    """
    if input_size < MIN_CLASSIFIER_INPUT:
        raise ValueError(f"attributes_table needs input_size >= {MIN_CLASSIFIER_INPUT} (Inception-v3's whole "
                         f"network does not fit a smaller image), got {input_size}; the paper uses 224")
    path = _cache_path(input_size)
    if cache and path.is_file():
        return pd.read_csv(path)
    if cache:
        print(f"measuring the attributes of the {len(ARCHITECTURES)} networks at {input_size} px once (1-2 minutes on "
              f"a CPU); cached in {path} ($DPLIB_CACHE)", flush=True)
    table = _measure_table(input_size)
    if cache:
        with atomic_write(path) as f:
            table.to_csv(f, index=False)
    return table


def _measure_table(input_size):
    rows = []
    x = torch.rand(1, 3, input_size, input_size)
    for arch in tqdm(ARCHITECTURES, desc="measuring attributes", unit="network"):
        classifier = build_classifier(arch, weights=None).eval()
        macs, depth, _ = _measure(classifier, x)
        total_params = sum(p.numel() for p in classifier.parameters())
        modules = list(classifier.modules())
        arch_row = dict(
            arch=arch,
            family=FAMILIES[arch],
            imagenet_top1=imagenet_weights(arch).meta["_metrics"]["ImageNet-1K"]["acc@1"],
            parameters=total_params,
            depth=depth,
            mflops=macs / 1e6,
            skip_connections=arch in SKIP_CONNECTIONS,
            branching=arch in BRANCHING,
            conv1x1=any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) for m in modules),
            batch_norm=any(isinstance(m, torch.nn.BatchNorm2d) for m in modules),
        )
        for point in POINTS:
            net = LossNetwork(arch, points=point, weights=None)
            point_macs, point_depth, features = _measure(net, x)
            point_params = sum(p.numel() for p in net.parameters())
            _, channels, height, width = features[point].shape
            rows.append(dict(arch_row, point=point, point_parameters=point_params, point_depth=point_depth,
                             point_mflops=point_macs / 1e6, parameter_fraction=point_params / total_params,
                             channels=channels, features=channels * height * width))
    return pd.DataFrame(rows)
