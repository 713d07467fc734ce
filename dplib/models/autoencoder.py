"""Benchmark 4's models, after the companion papers (Pihlgren et al. 2020, 2021): image and
feature encoders / decoders, the autoencoders of the six procedures, and MLP predictors.

Two image autoencoders (the `autoencoder` parameter):
  "released" (the authors' code): encoder of four 4x4 stride-2 convolutions WITHOUT padding,
      3 -> 32 -> 64 -> 128 -> 256 channels, each followed by batch norm and ReLU, then a
      linear layer to the embedding (and one to the log-variance for a VAE); sides
      64 -> 31 -> 14 -> 6 -> 2 (96: 47, 22, 10, 4). Decoder: a linear layer to 1024 x g x g
      (g = 1 at 64 px, 3 at 96 px) and ReLU, then transposed convolutions of kernels 5, 5,
      6, 6 with stride 2 (1024 -> 128 -> 64 -> 32 -> 3 channels; batch norm and ReLU but the
      last, which ends in a sigmoid): 1 -> 5 -> 13 -> 30 -> 64 (3 -> 9 -> 21 -> 46 -> 96).
  "simple": padded 4x4 stride-2 convolutions without batch norm, a linear layer to
      256 x s/16 x s/16 and 4x4 stride-2 transposed convolutions back, sigmoid output.
Feature encoder / decoder: MLPs with one hidden layer of min(P/2, 2048) units (as the
authors' code) between the P flattened loss-network features and the embedding; the
decoder ends in a sigmoid only when the features it predicts are sigmoid-squashed.
"""

import itertools

import torch
from torch import nn
from ..errors import InputError

CHANNELS = (32, 64, 128, 256)
MLP_SHAPES = ((), (32,), (64,), (32, 32), (64, 32), (64, 64), (128, 128))  # the seven predictors


AUTOENCODERS = ("released", "simple")


class _Encoder(nn.Module):
    """body (convolutions) then linear heads to the mean and, for a VAE, the log-variance."""

    def forward(self, x):
        h = self.body(x)
        return self.mean(h), (self.log_variance(h) if self.log_variance is not None else None)


class ReleasedImageEncoder(_Encoder):
    """(N, 3, s, s), s = 64 + 16 k -> (mean, log-variance or None), each (N, embedding)."""

    def __init__(self, size, embedding_size=64, variational=False):
        super().__init__()
        _check_released_size(size)
        layers, previous, side = [], 3, size
        for channels in CHANNELS:
            layers += [nn.Conv2d(previous, channels, 4, stride=2), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            previous, side = channels, (side - 4) // 2 + 1
        self.body = nn.Sequential(*layers, nn.Flatten())              # (N, 256 * side * side)
        flat = CHANNELS[-1] * side * side
        self.mean = nn.Linear(flat, embedding_size)
        self.log_variance = nn.Linear(flat, embedding_size) if variational else None


class ReleasedImageDecoder(nn.Module):
    """(N, embedding) -> (N, 3, s, s) in [0, 1], s = 64 + 16 k."""

    def __init__(self, size, embedding_size=64):
        super().__init__()
        _check_released_size(size)
        self.side = (size - 64) // 16 + 1
        self.project = nn.Sequential(nn.Linear(embedding_size, 1024 * self.side**2), nn.ReLU(inplace=True))
        widths, kernels = (1024, 128, 64, 32, 3), (5, 5, 6, 6)
        layers = []
        for i, kernel in enumerate(kernels):
            layers.append(nn.ConvTranspose2d(widths[i], widths[i + 1], kernel, stride=2))
            layers += [nn.BatchNorm2d(widths[i + 1]), nn.ReLU(inplace=True)] if i < 3 else [nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        return self.body(self.project(z).view(len(z), 1024, self.side, self.side))


def _check_released_size(size):
    if size < 64 or (size - 64) % 16:
        raise InputError(f"the released autoencoder takes images of 64 + 16 k px (64 for SVHN, 96 for STL-10), got {size}")


class ImageEncoder(_Encoder):
    """(N, 3, s, s) with s a multiple of 16 -> (mean, log-variance or None), each (N, embedding)."""

    def __init__(self, size, embedding_size=64, variational=False):
        super().__init__()
        if size % 16:
            raise InputError(f"image side must be a multiple of 16, got {size}")
        layers, previous = [], 3
        for channels in CHANNELS:
            layers += [nn.Conv2d(previous, channels, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            previous = channels
        self.body = nn.Sequential(*layers, nn.Flatten())
        flat = CHANNELS[-1] * (size // 16) ** 2
        self.mean = nn.Linear(flat, embedding_size)
        self.log_variance = nn.Linear(flat, embedding_size) if variational else None


class ImageDecoder(nn.Module):
    """(N, embedding) -> (N, 3, s, s) in [0, 1]."""

    def __init__(self, size, embedding_size=64):
        super().__init__()
        self.side = size // 16
        self.project = nn.Sequential(nn.Linear(embedding_size, CHANNELS[-1] * self.side**2), nn.ReLU(inplace=True))
        layers = []
        widths = list(reversed(CHANNELS)) + [3]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)]
            layers += [nn.ReLU(inplace=True)] if i < len(widths) - 2 else [nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        return self.body(self.project(z).view(len(z), CHANNELS[-1], self.side, self.side))


def feature_hidden_size(feature_size):
    """The feature MLPs' hidden width of the authors' code: min(P / 2, 2048)."""
    return int(min(feature_size / 2, 2048))


class FeatureEncoder(_Encoder):
    """Loss-network features (N, C, h, w) -> (mean, log-variance or None)."""

    def __init__(self, feature_size, embedding_size=64, variational=False):
        super().__init__()
        hidden = feature_hidden_size(feature_size)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(feature_size, hidden), nn.ReLU(inplace=True))
        self.mean = nn.Linear(hidden, embedding_size)
        self.log_variance = nn.Linear(hidden, embedding_size) if variational else None


class FeatureDecoder(nn.Module):
    """(N, embedding) -> predicted features (N, F): in [0, 1] through a sigmoid when the
    target features are sigmoid-squashed (sigmoid=True), unbounded otherwise."""

    def __init__(self, feature_size, embedding_size=64, sigmoid=False):
        super().__init__()
        hidden = feature_hidden_size(feature_size)
        self.body = nn.Sequential(nn.Linear(embedding_size, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, feature_size), *([nn.Sigmoid()] if sigmoid else []))

    def forward(self, z):
        return self.body(z)


class Autoencoder(nn.Module):
    """encoder + decoder; with a variational encoder, z is sampled in training, and otherwise
    the mean is used, except while `sampling` (a torch.Generator) is set: a validation pass of
    the released code, whose forward sampled z whenever the model was variational.
    forward -> (reconstruction, mean, log-variance or None)."""

    def __init__(self, encoder, decoder, validation_sample=False):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.validation_sample = validation_sample  # read by the B4 validation, which sets `sampling`
        self.sampling = None

    def forward(self, x):
        mean, log_variance = self.encoder(x)
        z = mean
        if log_variance is not None and (self.training or self.sampling is not None):
            noise = (torch.randn_like(mean) if self.training else
                     torch.randn(mean.shape, generator=self.sampling).to(mean))  # a seeded draw: repeatable
            z = mean + noise * torch.exp(0.5 * log_variance)
        return self.decoder(z), mean, log_variance

    def embed(self, x):
        return self.encoder(x)[0]


def kl_divergence(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, 1)) summed over dimensions, averaged over the batch."""
    return (-0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1)).mean()


ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.01), "relu": lambda: nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid}
OUTPUTS = {None: None, "softmax": lambda: nn.Softmax(dim=1)}


def mlp(input_size, hidden, classes=10, activation="leaky_relu", output=None):
    """An MLP predictor: `hidden` sizes with `activation` between (the authors': LeakyReLU
    with slope 0.01), then one output per class, raw (None) or through a softmax."""
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if output not in OUTPUTS:
        raise InputError(f"unknown output {output!r}; choose None or 'softmax'")
    layers, previous = [], input_size
    for width in hidden:
        layers += [nn.Linear(previous, width), ACTIVATIONS[activation]()]
        previous = width
    return nn.Sequential(*layers, nn.Linear(previous, classes), *([OUTPUTS[output]()] if output else []))


def search_shapes_003(widths=(32, 64, 128), depths=(1, 2)):
    """003's MLP shapes: 1 or 2 hidden layers of the given widths, none wider than the one
    before (the released generate_dense_architectures): (32,), (64,), (128,), (32, 32),
    (64, 32), (64, 64), (128, 32), (128, 64), (128, 128)."""
    shapes = [s for depth in depths for s in itertools.product(sorted(widths), repeat=depth)
              if all(a >= b for a, b in zip(s, s[1:]))]
    return tuple(sorted(shapes, key=lambda s: (len(s), s)))
