"""Johnson et al.'s image transformation network for super-resolution (Benchmark 2).

9x9 conv in, five residual blocks (the paper; Gross and Wilber's variant: no ReLU after the
addition; the authors' code had four: residual_blocks=4), one x2 upsampling block per
factor of two (nearest-neighbour upsampling then a 3x3 conv, which avoids the checkerboard
of transposed convolutions), 9x9 conv out, and a bounded output (tanh + 1) / 2 in [0, 1].
Every convolution, the last included, is followed by batch norm, as in the authors' code.
Reflection padding throughout. Fully convolutional: it runs on whole images of any size.
"""

import math

import torch
from torch import nn
from ..errors import InputError


def _conv(in_channels, out_channels, kernel):
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, padding_mode="reflect")


def check_scale(scale):
    """Stop unless `scale` is a power of two: the network upsamples by x2 steps."""
    if scale < 2 or 2 ** round(math.log2(scale)) != scale:
        raise InputError(f"scale must be a power of two (the paper: 4 or 8), got {scale}")


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                  _conv(channels, channels, 3), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


class TransformerNet(nn.Module):
    """forward: low-resolution RGB (N, 3, h, w) in [0, 1] -> (N, 3, h*scale, w*scale) in [0, 1]."""

    def __init__(self, scale=4, channels=64, residual_blocks=5):
        super().__init__()
        check_scale(scale)
        self.scale = scale
        layers = [_conv(3, channels, 9), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        layers += [ResidualBlock(channels) for _ in range(residual_blocks)]
        for _ in range(int(math.log2(scale))):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(channels, channels, 3),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        layers += [_conv(channels, 3, 9), nn.BatchNorm2d(3)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return (torch.tanh(self.body(x)) + 1) / 2
