"""Losses of the paper: deep perceptual similarity (Eq. 1), feature loss (Eq. 3 / Eq. 5),
perceptual sum of squared errors (Eq. 6), and the pixel-wise losses they are combined with.

Feature arguments are what `LossNetwork` returns: {point: (N, C, H, W)}. Every function
sums over the points it is given.

    >>> loss_fn = dplib.PerceptualLoss("vgg16", "early")
    >>> loss = loss_fn(output, target)            # scalar, Eq. 3
"""

import torch
import torch.nn.functional as F
from torch import nn

from .lossnets import LossNetwork
from .errors import InputError

EPS = 1e-10  # as the lpips package; added under the square root so zero vectors give finite gradients


def _pairs(features_x, features_y):
    if isinstance(features_x, torch.Tensor):
        features_x, features_y = {"": features_x}, {"": features_y}
    if features_x.keys() != features_y.keys():
        raise InputError(f"feature points differ: {list(features_x)} vs {list(features_y)}")
    for point in features_x:
        if features_x[point].shape != features_y[point].shape:
            raise InputError(f"features at {point!r} differ in shape: "
                             f"{tuple(features_x[point].shape)} vs {tuple(features_y[point].shape)}")
        yield point, features_x[point], features_y[point]


def unit_normalize(features):
    """Scale every spatial position's channel vector to unit length: (N, C, H, W) -> same shape."""
    return features * torch.rsqrt(features.pow(2).sum(dim=1, keepdim=True) + EPS**2)


def perceptual_distance(features_x, features_y, point_weights=None, normalized=False):
    """Eq. 1: d(x, x0) = sum_n 1/(H_n W_n) sum_hw w_n * ||z_n - z0_n||^2 -> (N,).

    z are the features unit-normalised over channels (pass normalized=True when they
    already are, e.g. a reference compared with several images); point_weights ({point: w},
    default 1 each) are the paper's equal weights. This is the `lpips` package's baseline
    (lpips=False).
    """
    total = 0
    for point, fx, fy in _pairs(features_x, features_y):
        if not normalized:
            fx, fy = unit_normalize(fx), unit_normalize(fy)
        squared = (fx - fy).pow(2).sum(dim=1)  # (N, H, W)
        weight = 1.0 if point_weights is None else point_weights[point]
        total = total + weight * squared.mean(dim=(1, 2))  # (N,)
    return total


def feature_loss(features_x, features_y, reduction="mean"):
    """Eq. 3 (one point) and Eq. 5 (summed over points): 1/(C H W) ||phi(x) - phi(y)||^2.

    Per sample (N,) with reduction="none", else the batch mean (the form used in training).
    """
    total = 0
    for _, fx, fy in _pairs(features_x, features_y):
        total = total + (fx - fy).pow(2).flatten(1).mean(dim=1)  # (N,)
    return total.mean() if reduction == "mean" else total


def squash(features, sigmoid):
    """Loss-network features through a sigmoid (the companion papers' "normalized between 0 and
    1"), or as they are."""
    return torch.sigmoid(features) if sigmoid else features


def perceptual_sse(features_x, features_y, sigmoid=False, reduction="sum"):
    """Eq. 6: sum over all m extracted features of (phi(x)_k - phi(A(x))_k)^2, per sample.

    sigmoid=True squashes the features first, as the companion papers' AlexNet loss does.
    reduction "sum": Eq. 6 per sample, averaged over the batch (the main paper, 003's Eqs. 1-2);
    "mean": averaged over every element instead (the released code's MSELoss; 003: "Optionally
    the average can be used instead of the sum"); "none": per sample (N,).
    """
    if reduction not in ("sum", "mean", "none"):
        raise InputError(f"unknown reduction {reduction!r}; choose sum, mean or none")
    total, elements = 0, 0
    for _, fx, fy in _pairs(features_x, features_y):
        total = total + (squash(fx, sigmoid) - squash(fy, sigmoid)).pow(2).flatten(1).sum(dim=1)  # (N,)
        elements += fx[0].numel()
    if reduction == "none":
        return total
    return total.mean() if reduction == "sum" else total.mean() / elements


def pixel_bce(logits, target):
    """Pixel-wise binary cross-entropy on logits (numerically stable), averaged."""
    return F.binary_cross_entropy_with_logits(logits, target)


KINDS = {"feature": feature_loss, "distance": perceptual_distance, "sse": perceptual_sse}


class PerceptualLoss(nn.Module):
    """A deep perceptual loss from any loss network (the paper's 56, the registered ones,
    "timm:<name>"), in one line.

        loss = PerceptualLoss("squeezenet1_1", "early")(output, target)

    kind: "feature" (Eq. 3/5, the training loss of Benchmarks 2 and 3; a scalar),
    "distance" (Eq. 1, the similarity of Benchmark 1; one value per pair, `point_weights`
    per point) or "sse" (Eq. 6, Benchmark 4; a scalar; `sigmoid` squashes the features
    first). weights: the loss network's ("imagenet", None or a state-dict path). The other
    arguments are LossNetwork's. The target's features are computed without gradients; pass
    `target_features` to reuse features computed once.

    Both inputs are RGB in [0, 1]. The target's range is checked (0-255 or [-1, 1] data is
    refused); a model output being trained may stray anywhere early on, so for the
    training kinds ("feature", "sse") only its shape is checked.
    """

    def __init__(self, arch, points="late", kind="feature", weights="imagenet", *, point_weights=None, sigmoid=False,
                 normalize_input=True, inception_transform=False, seed=0):
        super().__init__()
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r}; choose one of {sorted(KINDS)}")
        if point_weights is not None and kind != "distance":
            raise InputError("point_weights weigh the points of Eq. 1: they go with kind='distance'")
        if sigmoid and kind != "sse":
            raise InputError("sigmoid squashes the features of Eq. 6: it goes with kind='sse'")
        self.kind = kind
        self.options = ({"point_weights": point_weights} if kind == "distance" else
                        {"sigmoid": sigmoid} if kind == "sse" else {})
        self.network = LossNetwork(arch, points=points, weights=weights, normalize_input=normalize_input,
                                   inception_transform=inception_transform, seed=seed)
        if point_weights is not None and set(point_weights) != set(self.network.points):
            raise InputError(f"point_weights must give one weight per point {self.network.points}, "
                             f"got {sorted(point_weights)}")

    def forward(self, output, target=None, target_features=None):
        if target_features is None:
            if target is None:
                raise InputError("give the target images or their precomputed target_features")
            with torch.no_grad():
                target_features = self.network(target)
        output_features = self.network(output, check_range=self.kind == "distance")
        return KINDS[self.kind](output_features, target_features, **self.options)
