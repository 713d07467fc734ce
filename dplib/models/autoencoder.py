"""Benchmark 4's models, after the companion papers (Pihlgren et al. 2020, 2021): image and
feature encoders / decoders, the autoencoders of the six procedures, and MLP predictors.

Image encoder: 4 convolutions with stride 2 (32, 64, 128, 256 channels, 4x4 kernels),
then a linear layer to the embedding (and, for a VAE, a second one to the log-variance).
Image decoder: a linear layer to 256 x s/16 x s/16, then 4 transposed convolutions with
stride 2 back to 3 x s x s, sigmoid output. Feature encoder / decoder: MLPs with one
hidden layer of 2048 units between the flattened loss-network features and the embedding.
"""

import torch
from torch import nn

CHANNELS = (32, 64, 128, 256)
MLP_SHAPES = ((), (32,), (64,), (32, 32), (64, 32), (64, 64), (128, 128))  # the seven predictors


class ImageEncoder(nn.Module):
    """(N, 3, s, s) with s a multiple of 16 -> (mean, log-variance or None), each (N, embedding)."""

    def __init__(self, size, embedding_size=64, variational=False):
        super().__init__()
        if size % 16:
            raise ValueError(f"image side must be a multiple of 16, got {size}")
        layers, previous = [], 3
        for channels in CHANNELS:
            layers += [nn.Conv2d(previous, channels, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            previous = channels
        self.body = nn.Sequential(*layers, nn.Flatten())
        flat = CHANNELS[-1] * (size // 16) ** 2
        self.mean = nn.Linear(flat, embedding_size)
        self.log_variance = nn.Linear(flat, embedding_size) if variational else None

    def forward(self, x):
        h = self.body(x)
        return self.mean(h), (self.log_variance(h) if self.log_variance is not None else None)


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


class FeatureEncoder(nn.Module):
    """Flattened loss-network features (N, F) -> (mean, log-variance or None)."""

    def __init__(self, feature_size, embedding_size=64, variational=False, hidden=2048):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(feature_size, hidden), nn.ReLU(inplace=True))
        self.mean = nn.Linear(hidden, embedding_size)
        self.log_variance = nn.Linear(hidden, embedding_size) if variational else None

    def forward(self, features):
        h = self.body(features.flatten(1))
        return self.mean(h), (self.log_variance(h) if self.log_variance is not None else None)


class FeatureDecoder(nn.Module):
    """(N, embedding) -> predicted features (N, F) in [0, 1] (the features are sigmoid-squashed)."""

    def __init__(self, feature_size, embedding_size=64, hidden=2048):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(embedding_size, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, feature_size), nn.Sigmoid())

    def forward(self, z):
        return self.body(z)


class Autoencoder(nn.Module):
    """encoder + decoder; with a variational encoder, z is sampled in training and the mean
    is used otherwise. forward -> (reconstruction, mean, log-variance or None)."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x):
        mean, log_variance = self.encoder(x)
        z = mean
        if log_variance is not None and self.training:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        return self.decoder(z), mean, log_variance

    def embed(self, x):
        return self.encoder(x)[0]


def kl_divergence(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, 1)) summed over dimensions, averaged over the batch."""
    return (-0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1)).mean()


def mlp(input_size, hidden, classes=10):
    """An MLP predictor: `hidden` sizes with ReLU between, then the class logits."""
    layers, previous = [], input_size
    for width in hidden:
        layers += [nn.Linear(previous, width), nn.ReLU(inplace=True)]
        previous = width
    return nn.Sequential(*layers, nn.Linear(previous, classes))
