"""Scores of the four benchmarks: 2AFC and JND mAP (B1), SRCC, KRCC and PLCC against opinion
scores (B1 beyond BAPPS), PSNR and SSIM (B2), correctness, completeness and quality (B3),
accuracy (B4).

Image metrics take float tensors in [0, 1], (N, 3, H, W) or (3, H, W), and return one
value per image, as numpy arrays: averaging over a test set is the caller's choice.
"""

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from .errors import InputError


def _numpy(x):
    return x.detach().cpu().double().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)


# ----- Benchmark 1 --------------------------------------------------------------------------

def two_afc(d0, d1, judge, reduce=True):
    """Eq. 2: agreement of a distance with human 2AFC judgements.

    d0, d1: distances ref-p0 and ref-p1 (N,); judge: fraction of people who found p1 closer.
    Per triplet: judge when d1 < d0, 1 - judge when d0 < d1, 0.5 on a tie (as upstream).
    """
    d0, d1, judge = (_numpy(v).ravel() for v in (d0, d1, judge))
    if not (d0.shape == d1.shape == judge.shape):
        raise InputError(f"d0, d1 and judge must have the same length, got {d0.shape}, {d1.shape}, {judge.shape}")
    scores = (d0 < d1) * (1.0 - judge) + (d1 < d0) * judge + (d0 == d1) * 0.5
    return float(scores.mean()) if reduce else scores


def average_precision(recall, precision):
    """VOC area under the precision envelope (the 'correct' non-11-point VOC AP)."""
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = np.concatenate(([0.0], precision, [0.0]))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: max to the right
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def jnd_map(distances, same):
    """JND mAP: pairs ranked by distance (closest first) retrieve the pairs people called the same.

    The distances are FLATTENED before sorting. The upstream scorer (lpips'
    score_jnd_dataset) keeps them as an (N, 1, 1, 1) array, so np.argsort sorts each
    length-1 row and the pairs are never ranked: its mAP depends on file order. Ours does not.
    """
    distances, same = _numpy(distances).ravel(), _numpy(same).ravel()
    if distances.shape != same.shape:
        raise InputError(f"distances and same must have the same length, got {distances.shape} and {same.shape}")
    order = np.argsort(distances, kind="stable")
    same = same[order]
    true_positives = np.cumsum(same)
    false_positives = np.cumsum(1.0 - same)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / same.sum()
    return average_precision(recall, precision)



# ----- human opinion scores (Benchmark 1 beyond BAPPS: KADID-10k, TID2013, PIPAL) --------------
# A distance is lower for a better image; an opinion score (MOS, DMOS as KADID-10k publishes it,
# PIPAL's Elo) is higher. Each correlation is of -distance with the score, so that a metric that
# agrees with people correlates positively (as pyiqa negates lower-is-better metrics).

def _opinion_pair(distances, scores):
    distances, scores = _numpy(distances).ravel(), _numpy(scores).ravel()
    if distances.shape != scores.shape or distances.size < 3:
        raise InputError(f"distances and scores must have the same length, at least 3, got {distances.shape} and "
                         f"{scores.shape}")
    return -distances, scores


def srcc(distances, scores):
    """Spearman's rank correlation of -distance with the opinion scores (ties: average ranks)."""
    from scipy import stats

    return float(stats.spearmanr(*_opinion_pair(distances, scores))[0])


def krcc(distances, scores):
    """Kendall's tau-b of -distance with the opinion scores."""
    from scipy import stats

    return float(stats.kendalltau(*_opinion_pair(distances, scores))[0])


def logistic_4(x, b1, b2, b3, b4):
    """The VQEG's monotonic logistic (VQEG FR-TV Phase II final report, 2003; pyiqa's
    'logistic_4params'): (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    return (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4))) + b2


def logistic_fit(distances, scores):
    """The parameters of logistic_4 mapping -distance to the scores, least squares (scipy's
    curve_fit) from pyiqa's start: (max score, min score, mean x, std x / 4)."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    x, y = _opinion_pair(distances, scores)
    start = [y.max(), y.min(), x.mean(), (x.std() or 1.0) / 4]
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # the parameters' covariance, which is not used
        parameters, _ = curve_fit(logistic_4, x, y, p0=start, maxfev=20000)
    return parameters


def plcc(distances, scores):
    """Pearson's correlation of the scores with logistic_4(-distance) fitted to them (the VQEG's
    practice: the metric's monotonic nonlinearity taken out before a linear correlation); NaN
    where no logistic can be fitted (constant distances)."""
    x, y = _opinion_pair(distances, scores)
    try:
        parameters = logistic_fit(distances, scores)
    except RuntimeError:  # curve_fit found no fit (constant distances, say): no PLCC to report
        return float("nan")
    with np.errstate(over="ignore"):
        fitted = logistic_4(x, *parameters)
    return float(np.corrcoef(fitted, y)[0, 1]) if np.std(fitted) > 0 else float("nan")

# ----- Benchmark 2 --------------------------------------------------------------------------

def rgb_to_y(x):
    """Luma of ITU-R BT.601 as MATLAB's rgb2ycbcr (the super-resolution convention), in [0, 1].

    x: (N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W); Y spans [16, 235] / 255.
    """
    weights = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (x * weights).sum(dim=1, keepdim=True)) / 255.0


def _prepare(x, y, channel, crop_border):
    if x.shape != y.shape:
        raise InputError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim == 3:
        x, y = x[None], y[None]
    x, y = x.double(), y.double()
    if channel == "y":
        x, y = rgb_to_y(x), rgb_to_y(y)
    elif channel != "rgb":
        raise InputError(f"channel must be 'y' or 'rgb', got {channel!r}")
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    return x, y


def psnr(x, y, channel="y", crop_border=0):
    """PSNR in dB per image, data range 1.

    Convention of Benchmark 2: channel="y" (luma of BT.601, as MATLAB's rgb2ycbcr), a
    border of `crop_border` pixels (the scale factor) removed on every side, whole images.
    channel="rgb" compares all three channels instead.
    """
    x, y = _prepare(x, y, channel, crop_border)
    mse = (x - y).pow(2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(1.0 / mse)).cpu().numpy()


def _gaussian_window(size=11, sigma=1.5, dtype=torch.float64, device=None):
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim(x, y, channel="y", crop_border=0):
    """Mean SSIM per image (Wang et al. 2004), data range 1.

    11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, population covariances,
    averaged over the positions where the window fits inside the image (scikit-image's
    `structural_similarity(..., gaussian_weights=True, use_sample_covariance=False,
    data_range=1)`). Channel and border as in `psnr`; RGB SSIM averages the channels.
    """
    x, y = _prepare(x, y, channel, crop_border)
    channels = x.shape[1]
    window = _gaussian_window(device=x.device).expand(channels, 1, 11, 11)

    def blur(t):  # 'valid' filtering: only positions where the whole window fits
        return F.conv2d(t, window, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).cpu().numpy()


# The released Benchmark 2 code's computations (src/super_res/test.py and train.py of the
# authors' repository): its test wrote each output and target as an 8-bit PNG (torchvision's
# save_image: x * 255 + 0.5, clamped, truncated to uint8), read them back (OpenCV, / 255) and
# scored the luma Y' = (65.738 R + 129.057 G + 25.064 B) / 256 (MATLAB's coefficients over 256,
# no +16 offset) with a 2 px border shaved, by scikit-image with data_range 1: PSNR (its
# "PSNR_2") and SSIM (its "MSSIM": a uniform 7 x 7 window, sample covariance); one image per
# batch. Its validation scored torchmetrics' PSNR of Y = 16 + 65.481 R + 128.553 G + 24.966 B
# (in [16, 235]) per batch, the data range the batch target's max - min, no border shaved.
RELEASED_SHAVE = 2


def released_luma(x):
    """(N, 3, H, W) in [0, 1] -> Y' (N, H - 4, W - 4) float64 numpy: quantised to 8 bits as the
    released test's PNG files were, MATLAB's weights over 256, a 2 px border shaved."""
    # torchvision's save_image, in the float32 it ran in: x * 255 + 0.5, clamped, cast to uint8
    # (rounding in float64 instead moves a pixel by one level where x * 255 + 0.5 is near an integer)
    quantised = _numpy_tensor(x).float().mul(255).add(0.5).clamp(0, 255).to(torch.uint8).double() / 255
    weights = quantised.new_tensor([65.738, 129.057, 25.064]).view(1, 3, 1, 1) / 256
    luma = (quantised * weights).sum(dim=1)                                 # (N, H, W)
    s = RELEASED_SHAVE
    return luma[:, s:-s, s:-s].numpy()


def _numpy_tensor(x):
    x = torch.as_tensor(x).detach().cpu().double()
    return x[None] if x.ndim == 3 else x


def psnr_released(x, y):
    """PSNR in dB per image as the released test computed it (its "PSNR_2", see above)."""
    from skimage.metrics import peak_signal_noise_ratio

    return np.array([peak_signal_noise_ratio(a, b, data_range=1) for a, b in zip(released_luma(y), released_luma(x))])


def ssim_released(x, y):
    """Mean SSIM per image as the released test computed it (its "MSSIM", see above)."""
    from skimage.metrics import structural_similarity

    return np.array([structural_similarity(a, b, data_range=1) for a, b in zip(released_luma(y), released_luma(x))])


def psnr_released_validation(x, y):
    """One PSNR for a batch, as the released validation computed it (torchmetrics' PSNR of Y in
    [16, 235], data range the batch target's max - min, the squared error over the batch)."""
    x, y = _numpy_tensor(x), _numpy_tensor(y)
    luma_x, luma_y = 255 * rgb_to_y(x), 255 * rgb_to_y(y)                     # Y in [16, 235]
    data_range = luma_y.max() - luma_y.min()
    return float(10 * torch.log10(data_range**2 / (luma_x - luma_y).pow(2).mean()))


# ----- Benchmark 3 --------------------------------------------------------------------------

def delineation_scores(pred, target, threshold=0.5, slack=0):
    """Correctness, completeness and quality (Wiedemann et al. 1998) per image.

    pred: probabilities (N, H, W) or (H, W), binarised at `threshold`; target: binary masks.
    slack (pixels): 0 is pixel-exact; > 0 counts a predicted pixel as correct when a
    target pixel lies within that Euclidean distance, and a target pixel as found when a
    predicted pixel does (distance transforms).
        correctness  = matched predicted pixels / predicted pixels       (precision)
        completeness = matched target pixels / target pixels             (recall)
        quality      = matched predicted / (predicted + unmatched target) (Wiedemann et al.:
                       matched extraction / (extraction + unmatched reference); at slack 0,
                       TP / (TP + FP + FN))
    An image with no predicted road has correctness NaN (nothing to be correct about); one
    with no target road has completeness NaN; both empty is a perfect 1, 1, 1. Average
    over images with np.nanmean.
    Returns a dict of three arrays of length N.
    """
    pred, target = _numpy(pred), _numpy(target)
    if pred.shape != target.shape:
        raise InputError(f"pred and target differ in shape: {pred.shape} vs {target.shape}")
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    scores = {"correctness": [], "completeness": [], "quality": []}
    for p, t in zip(pred >= threshold, target >= 0.5):
        if slack > 0:
            # distance of every pixel to the nearest target / predicted pixel (inf if none)
            to_target = ndimage.distance_transform_edt(~t) if t.any() else np.full(t.shape, np.inf)
            to_pred = ndimage.distance_transform_edt(~p) if p.any() else np.full(p.shape, np.inf)
            matched_pred = np.count_nonzero(p & (to_target <= slack))
            matched_target = np.count_nonzero(t & (to_pred <= slack))
        else:
            matched_pred = matched_target = np.count_nonzero(p & t)
        n_pred, n_target = np.count_nonzero(p), np.count_nonzero(t)
        if n_pred == 0 and n_target == 0:
            c, m, q = 1.0, 1.0, 1.0
        else:
            c = matched_pred / n_pred if n_pred else np.nan
            m = matched_target / n_target if n_target else np.nan
            q = matched_pred / (n_pred + n_target - matched_target)
        scores["correctness"].append(c)
        scores["completeness"].append(m)
        scores["quality"].append(q)
    return {k: np.array(v) for k, v in scores.items()}


# ----- Benchmark 4 --------------------------------------------------------------------------

def accuracy(logits, labels):
    """Fraction of samples whose arg-max class (or given class, for 1-D input) equals the label."""
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels)
    predicted = logits.argmax(dim=1) if logits.ndim == 2 else logits
    return float((predicted == labels).float().mean())
