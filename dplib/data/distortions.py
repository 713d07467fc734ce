"""Image distortions with a strength in [0, 1], for fixtures and the walkthrough.

Each takes and returns an RGB batch (N, 3, H, W) in [0, 1]; stronger means further from
the original, which is what the fixture datasets' human-judgement stand-ins rely on.
"""

import io

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from ..errors import InputError


def blur(x, strength, generator=None):
    sigma = 0.3 + 3.0 * strength
    kernel = 2 * int(3 * sigma) + 1
    return TF.gaussian_blur(x, kernel_size=kernel, sigma=sigma)


def noise(x, strength, generator=None):
    return (x + 0.35 * strength * torch.randn(x.shape, generator=generator)).clamp(0, 1)


def jpeg(x, strength, generator=None):
    quality = int(round(95 - 90 * strength))
    out = []
    for image in x:
        array = (image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255
        out.append(torch.from_numpy(decoded).permute(2, 0, 1))
    return torch.stack(out)


def color(x, strength, generator=None):
    gains = 1 + strength * torch.tensor([0.6, -0.4, 0.3]).view(1, 3, 1, 1)
    return (x * gains).clamp(0, 1)


def contrast(x, strength, generator=None):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return x * (1 - 0.8 * strength) + mean * 0.8 * strength


DISTORTIONS = {"blur": blur, "noise": noise, "jpeg": jpeg, "color": color, "contrast": contrast}


def distort(x, kind, strength, seed=0):
    """Apply distortion `kind` (one of DISTORTIONS) at `strength` in [0, 1]."""
    if kind not in DISTORTIONS:
        raise InputError(f"unknown distortion {kind!r}; choose one of {sorted(DISTORTIONS)}")
    generator = torch.Generator().manual_seed(seed)
    return DISTORTIONS[kind](x, float(strength), generator=generator)
