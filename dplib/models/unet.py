"""The U-Nets of Benchmark 3, applied iteratively (Mosinska et al.): the input is the image and
the previous iteration's prediction (blank at the first), K times, in training AND at test
time (the authors' code trained with K = 1).

Two U-Nets, both returning logits (N, 1, H, W) with H and W multiples of 16:
  ReleasedUNet (unet="released"): the authors' code. Four down blocks and four up blocks,
      each pre-activated: activation, then a 4x4 stride-2 convolution (transposed going up),
      no bias, batch norm. Channels grow from the 4 input channels: 8, 16, 32, 32 down;
      32, 16, 8, 1 up, each up block taking the skip connection of its level. The code
      meant LeakyReLU(0.2) going down and ReLU going up, but its switch is inverted
      (a non-zero slope selects ReLU, zero selects LeakyReLU(0), i.e. ReLU), so every block
      uses ReLU: reproduced here. It ends in a sigmoid; here the loss takes the logits
      instead (BCE with logits: the same value, computed stably).
  UNet (unet="standard"): the usual 3x3 double-convolution U-Net, `base_channels` wide.
"""

import contextlib

import torch
from torch import nn
from ..errors import InputError


def _double_conv(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def _check_size(x, multiple):
    if x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise InputError(f"U-Net input of {tuple(x.shape[-2:])} px: sides must be multiples of {multiple}")


class UNet(nn.Module):
    """(N, in_channels, H, W) -> logits (N, 1, H, W); H and W divisible by 2**levels."""

    def __init__(self, in_channels=4, base_channels=32, levels=4):
        super().__init__()
        widths = [base_channels * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])] +
                                  [_double_conv(widths[i], widths[i + 1]) for i in range(levels)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(levels))])
        self.merge = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in reversed(range(levels))])
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.levels = levels

    def forward(self, x):
        _check_size(x, 2**self.levels)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def _released_block(in_channels, out_channels, up):
    convolution = nn.ConvTranspose2d if up else nn.Conv2d
    return nn.Sequential(nn.ReLU(), convolution(in_channels, out_channels, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(out_channels))


class ReleasedUNet(nn.Module):
    """The authors' U-Net (module docstring): (N, in_channels, H, W) -> logits (N, 1, H, W)."""

    def __init__(self, in_channels=4):
        super().__init__()
        c = in_channels
        self.down = nn.ModuleList([_released_block(c, 2 * c, False), _released_block(2 * c, 4 * c, False),
                                   _released_block(4 * c, 8 * c, False), _released_block(8 * c, 8 * c, False)])
        self.up = nn.ModuleList([_released_block(8 * c, 8 * c, True), _released_block(16 * c, 4 * c, True),
                                 _released_block(8 * c, 2 * c, True), _released_block(4 * c, 1, True)])

    def forward(self, x):
        _check_size(x, 16)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)                       # (N, 8c|16c|32c|32c, H/2 .. H/16)
        x = self.up[0](x)                         # (N, 32c, H/8)
        for block, skip in zip(self.up[1:], reversed(skips[:-1])):
            x = block(torch.cat([x, skip], dim=1))
        return x                                  # (N, 1, H, W)


UNETS = ("released", "standard")


class IterativeUNet(nn.Module):
    """forward(image (N, 3, H, W)) -> [logits of iteration 1, ..., K], each (N, 1, H, W).

    K is `iterations` in eval mode and `train_iterations` in train mode (both 3 in the paper)."""

    def __init__(self, iterations=3, base_channels=32, levels=4, unet="released", train_iterations=None):
        super().__init__()
        if unet not in UNETS:
            raise InputError(f"unknown U-Net {unet!r}; choose one of {', '.join(UNETS)}")
        self.iterations = iterations
        self.train_iterations = iterations if train_iterations is None else train_iterations
        self.unet = ReleasedUNet(4) if unet == "released" else UNet(4, base_channels=base_channels, levels=levels)

    @contextlib.contextmanager
    def applied(self, iterations):
        """Within the block, applied `iterations` times whatever the mode (the released code
        validated with its training K, and tested with its model in train mode)."""
        self._forced = iterations
        try:
            yield self
        finally:
            self._forced = None

    def forward(self, image):
        prediction = torch.zeros_like(image[:, :1])  # blank at the first iteration
        outputs = []
        forced = getattr(self, "_forced", None)
        for _ in range(forced or (self.train_iterations if self.training else self.iterations)):
            logits = self.unet(torch.cat([image, prediction], dim=1))
            outputs.append(logits)
            prediction = torch.sigmoid(logits)
        return outputs
