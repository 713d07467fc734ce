"""Benchmark 2: a transformation network trained for x4 / x8 super-resolution with the
feature loss (Eq. 3) of one loss network, validated on COCO by PSNR (keeping the best, as
some loss networks collapse to black images), tested on Set5, Set14 and BSD100.

Scores (the record states the convention): PSNR and SSIM on the Y channel of BT.601, a
border of `scale` pixels removed, whole test images (cropped to a multiple of the scale).
"""

import numpy as np
import torch

from .data.superres import degrade, test_images
from .losses import feature_loss
from .metrics import psnr, ssim
from .results import score_row

CONVENTION = "Y channel (ITU-R BT.601, as MATLAB rgb2ycbcr), border of `scale` px removed, whole images, data range 1"
COLLAPSE_STD = 0.02  # an output this flat (per image, averaged) is a collapsed model, e.g. all black


def total_variation(x):
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def make_loss(loss_network, scale, device, pixel_weight=0.0, tv_weight=0.0, channels_last=False):
    """loss_fn(model, hr_batch) for dplib.train.fit: degrade the targets, upscale, compare features."""

    def loss_fn(model, hr):
        hr = hr.to(device, non_blocking=True)
        low = degrade(hr, scale)
        if channels_last:
            hr, low = hr.contiguous(memory_format=torch.channels_last), low.contiguous(memory_format=torch.channels_last)
        output = model(low)
        with torch.no_grad():  # targets come from load_image, in [0, 1] by construction: no range check per step
            target = loss_network(hr, check_range=False)
        loss = feature_loss(loss_network(output, check_range=False), target)
        if pixel_weight:
            loss = loss + pixel_weight * torch.nn.functional.mse_loss(output, hr)
        if tv_weight:
            loss = loss + tv_weight * total_variation(output)
        return loss

    return loss_fn


def make_validation(images, scale, device, batch_size=8):
    """validate(model) -> {"score": mean Y-PSNR over `images` (N, 3, H, W), "collapsed": bool}."""

    def validate(model):
        scores, spreads = [], []
        for start in range(0, len(images), batch_size):
            hr = images[start:start + batch_size].to(device)
            output = model(degrade(hr, scale)).float().clamp(0, 1)
            scores.append(psnr(output.cpu(), hr.cpu(), crop_border=scale))
            spreads.append(output.flatten(1).std(dim=1).cpu().numpy())
        spread = float(np.concatenate(spreads).mean())
        return {"score": float(np.concatenate(scores).mean()), "collapsed": spread < COLLAPSE_STD}

    return validate


@torch.no_grad()
def evaluate(model, root, scale, device, arch, point, channel="y", sets=("Set5", "Set14", "BSD100")):
    """PSNR and SSIM per test set (means over images) as score rows, plus one example per set."""
    model.eval()
    rows, examples = [], {}
    for name in sets:
        psnrs, ssims = [], []
        for index, (stem, hr) in enumerate(test_images(root, name, scale)):
            low = degrade(hr[None].to(device), scale)
            output = model(low).float().clamp(0, 1).cpu()
            psnrs.append(psnr(output, hr[None], channel=channel, crop_border=scale)[0])
            ssims.append(ssim(output, hr[None], channel=channel, crop_border=scale)[0])
            if index == 0:
                examples[name] = (low[0].cpu(), output[0], hr)
        dataset = name.lower()
        note = f"{len(psnrs)} images; {'Y' if channel == 'y' else 'RGB'}, border {scale} px"
        rows.append(score_row("b2", "psnr", np.mean(psnrs), dataset=dataset, scale=scale, arch=arch, point=point,
                              note=note))
        rows.append(score_row("b2", "ssim", np.mean(ssims), dataset=dataset, scale=scale, arch=arch, point=point,
                              note=note))
    return rows, examples


def plot_examples(examples, title=""):
    """Low resolution / output / ground truth for one image of each test set."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(examples), 3, figsize=(9, 3 * len(examples)), squeeze=False)
    for row, (name, images) in zip(axes, examples.items()):
        for axis, image, label in zip(row, images, ("low resolution", "output", "ground truth")):
            axis.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            axis.set_title(f"{name}: {label}")
            axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
