"""Benchmark 2: a transformation network trained for x4 / x8 super-resolution with the
feature loss (Eq. 3) of one loss network, validated on COCO by PSNR (keeping the best, as
some loss networks collapse to black images), tested on Set5, Set14 and BSD100.

Scores (the record states the convention, `metric_convention`): "released", the authors'
test's scikit-image PSNR and SSIM of the 8-bit outputs' luma with a 2 px border shaved, and
their validation's torchmetrics PSNR (dplib.metrics); or "matlab", PSNR and SSIM (Gaussian
window) on the Y channel of BT.601 with a border of `scale` pixels removed. Whole test
images (cropped to a multiple of the scale).
Batches are (hr, lr) pairs made by the data (degradation "pil"), or hr alone, degraded here
on the training device (degradation "torch"): see dplib.data.superres.
"""

import numpy as np
import torch

from ..data import superres
from ..data.superres import TEST_SETS, degrade, test_images
from ..losses import feature_loss
from ..metrics import psnr, psnr_released, psnr_released_validation, ssim, ssim_released
from . import Benchmark, Score
from .record import score_row

SETS, SCALES = ("set5", "set14", "bsd100"), (4, 8)
BENCHMARK = Benchmark(
    name="b2", title="super-resolution", module="dplib.benchmarks.b2", notebook="notebooks/b2_super_resolution.ipynb",
    params="params/b2.yaml", datasets=("superres",),
    scores=tuple(Score(name, "higher", SETS, SCALES, label) for name, label in
                 {"psnr": "dB", "ssim": ""}.items()),  # the keys of IMAGE_SCORES (tested)
    paper_items=("table_3", "table_4", "table_6", "table_7", "table_8", "table_9", "fig_2"), headline="b2 ssim bsd100 x4")
from ..errors import InputError

CONVENTIONS = {  # metric_convention -> what the record says of its scores
    "released": "the released test: Y' = (65.738 R + 129.057 G + 25.064 B) / 256 of the 8-bit PNG outputs, a 2 px "
                "border shaved, scikit-image PSNR and SSIM (uniform 7 x 7 window) with data range 1; validation: "
                "torchmetrics PSNR of Y in [16, 235], data range per batch",
    "matlab": "Y channel (ITU-R BT.601, as MATLAB rgb2ycbcr), border of `scale` px removed, SSIM with an 11 x 11 "
              "Gaussian window, data range 1",
}


def check_convention(convention, channel):
    if convention not in CONVENTIONS:
        raise InputError(f"unknown metric convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    if convention == "released" and channel != "y":
        raise InputError("the released metric convention scores the luma only: channel 'rgb' goes with "
                         "metric_convention 'matlab'")


# Each score of a test image, by convention: {score: (released, matlab)}; the record declares one
# Score per key (a metric added here reaches the rows, the record and every table that reads it).
IMAGE_SCORES = {
    "psnr": (lambda out, hr, scale, channel: psnr_released(out, hr),
             lambda out, hr, scale, channel: psnr(out, hr, channel=channel, crop_border=scale)),
    "ssim": (lambda out, hr, scale, channel: ssim_released(out, hr),
             lambda out, hr, scale, channel: ssim(out, hr, channel=channel, crop_border=scale)),
}


def image_scores(output, hr, scale, convention, channel):
    """{score: value of each image} of a batch (N, 3, H, W) in the convention's computation."""
    which = 0 if convention == "released" else 1
    return {name: functions[which](output, hr, scale, channel) for name, functions in IMAGE_SCORES.items()}
COLLAPSE_STD = 0.02  # an output this flat (per image, averaged) is a collapsed model, e.g. all black


def total_variation(x):
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def _pair(batch, scale, device):
    """(hr, lr) on the device from a batch of pairs, or of hr alone (degraded here)."""
    if isinstance(batch, (list, tuple)):
        return tuple(t.to(device, non_blocking=True) for t in batch)
    hr = batch.to(device, non_blocking=True)
    return hr, degrade(hr, scale)


def make_loss(loss_network, scale, device, pixel_weight=0.0, tv_weight=0.0, channels_last=False):
    """loss_fn(model, batch) for dplib.train.fit: upscale the low-resolution images, compare
    features (Eq. 3: the mean squared difference, weight 1)."""

    def loss_fn(model, batch):
        hr, low = _pair(batch, scale, device)
        if channels_last:
            hr, low = hr.contiguous(memory_format=torch.channels_last), low.contiguous(memory_format=torch.channels_last)
        output = model(low)
        with torch.no_grad():  # targets are decoded images, in [0, 1] by construction: no range check per step
            target = loss_network(hr, check_range=False)
        loss = feature_loss(loss_network(output, check_range=False), target)
        if pixel_weight:
            loss = loss + pixel_weight * torch.nn.functional.mse_loss(output, hr)
        if tv_weight:
            loss = loss + tv_weight * total_variation(output)
        return loss

    return loss_fn


def make_validation(dataset, scale, device, convention, batch_size):
    """validate(model) -> {"score": validation PSNR, "collapsed": bool}: the released
    validation's mean over batches of each batch's PSNR weighted by its size ("released"), or
    the mean Y-PSNR of the images ("matlab"). The pairs of `dataset` are made once and kept."""
    items = [dataset[i] for i in range(len(dataset))]
    batches = [torch.utils.data.default_collate(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]

    def validate(model):
        scores, weights, spreads = [], [], []
        for batch in batches:
            hr, low = _pair(batch, scale, device)
            output = model(low).float().clamp(0, 1)
            if convention == "released":
                scores.append(psnr_released_validation(output.cpu(), hr.cpu()))
                weights.append(len(hr))
            else:
                per_image = psnr(output.cpu(), hr.cpu(), crop_border=scale)
                scores += list(per_image)
                weights += [1] * len(per_image)
            spreads.append(output.flatten(1).std(dim=1).cpu().numpy())
        spread = float(np.concatenate(spreads).mean())
        return {"score": float(np.average(scores, weights=weights)), "collapsed": spread < COLLAPSE_STD}

    return validate


@torch.no_grad()
def evaluate(model, root, scale, device, arch, point, convention, channel, crop_mode, degradation, crop, sets=TEST_SETS):
    """PSNR and SSIM per test set (means over images, one image at a time as the released test)
    as score rows, plus one example per set."""
    check_convention(convention, channel)
    model.eval()
    rows, examples = [], {}
    for name in sets:
        values = {score: [] for score in IMAGE_SCORES}
        for index, (_, hr, lr) in enumerate(test_images(root, name, scale, crop, crop_mode, degradation)):
            low = degrade(hr[None].to(device), scale) if lr is None else lr[None].to(device)
            output = model(low).float().clamp(0, 1).cpu()
            for score, value in image_scores(output, hr[None], scale, convention, channel).items():
                values[score].append(value[0])
            if index == 0:
                examples[name] = (low[0].cpu(), output[0], hr)
        images = len(next(iter(values.values())))
        note = (f"{images} images ({'whole' if crop_mode == 'whole' else crop_mode}); "
                + (f"{'Y' if channel == 'y' else 'RGB'}, border {scale} px" if convention == "matlab"
                   else "the released test's luma of 8-bit outputs, border 2 px, scikit-image"))
        rows += [score_row("b2", score, np.mean(v), dataset=name.lower(), scale=scale, arch=arch, point=point,
                           note=note) for score, v in values.items()]
    return rows, examples


def plot_examples(examples, title="", labels=("low resolution", "output", "ground truth")):
    """Input / output / ground truth for one image of each test set ({set: three (3, H, W) images});
    Benchmark 5 labels them noisy / output / clean."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(examples), 3, figsize=(9, 3 * len(examples)), squeeze=False)
    for row, (name, images) in zip(axes, examples.items()):
        for axis, image, label in zip(row, images, labels):
            axis.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            axis.set_title(f"{name}: {label}")
            axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def data_needs(parameters):
    """What a run reads: its seeded COCO samples and the test sets (superres.needs)."""
    p = parameters
    return {"superres": superres.needs(p["seed"], p["train_images"], p["val_images"], p["crop"], p["train_crop"])}


def steps(parameters):
    return parameters["iterations"]


def step_key(parameters):
    return "b2"


def build_model(parameters):
    """The model a run trains, from its notebook parameters: the transformation network (scale,
    residual_blocks). The notebook, the disk estimate and the bench scripts build it here."""
    from ..models import TransformerNet

    return TransformerNet(parameters["scale"], residual_blocks=parameters["residual_blocks"])


def disk_bytes(parameters):
    """(kept, while running) bytes on disk of one run: the checkpoint (model and Adam's two
    moments, float32) and, with cache_crops, the decoded pairs (uint8)."""
    with torch.device("meta"):
        model = build_model(parameters)
        count = sum(p.numel() for p in model.parameters())
    cache = parameters["train_images"] * 3 * parameters["crop"] ** 2 * (1 + 1 / parameters["scale"] ** 2)
    return int(12 * count + (cache if parameters["cache_crops"] else 0)), 0


def check_parameters(parameters):
    """[(parameter, problem)]: the B2 notebook's choices, checked by the grid before any run."""
    from ..data.superres import DEGRADATIONS
    from ..models.transformer_net import check_scale
    from . import check_choices, not_negative, positive

    problems = check_choices(parameters, {
        "scale": check_scale, "train_crop": ("resize_center", "random"), "degradation": DEGRADATIONS,
        "test_crop": ("whole", "resize_center"), "metric_convention": tuple(CONVENTIONS), "channel": ("y", "rgb"),
        "iterations": positive, "lr": positive, "crop": positive, "train_images": positive, "val_images": positive,
        "val_every": not_negative, "residual_blocks": positive, "pixel_weight": not_negative,
        "tv_weight": not_negative})
    try:
        check_convention(parameters["metric_convention"], parameters["channel"])
    except InputError as error:
        problems.append(("channel", str(error)))
    return problems
