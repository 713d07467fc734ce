"""The U-Net of Benchmark 3, applied iteratively (Mosinska et al.): its input is the image
and the previous iteration's prediction (blank at the first), K times, in training AND at
test time (the original benchmark code trained with K=1).
"""

import torch
from torch import nn


def _double_conv(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


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
        if x.shape[-1] % 2**self.levels or x.shape[-2] % 2**self.levels:
            raise ValueError(f"U-Net input of {tuple(x.shape[-2:])} px: sides must be multiples of {2**self.levels}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class IterativeUNet(nn.Module):
    """forward(image (N, 3, H, W)) -> [logits of iteration 1, ..., K], each (N, 1, H, W)."""

    def __init__(self, iterations=3, base_channels=32, levels=4):
        super().__init__()
        self.iterations = iterations
        self.unet = UNet(in_channels=4, base_channels=base_channels, levels=levels)

    def forward(self, image):
        prediction = torch.zeros_like(image[:, :1])  # blank at the first iteration
        outputs = []
        for _ in range(self.iterations):
            logits = self.unet(torch.cat([image, prediction], dim=1))
            outputs.append(logits)
            prediction = torch.sigmoid(logits)
        return outputs
