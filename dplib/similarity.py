"""A perceptual similarity metric from any loss network, calibrated or not: LPIPS's form for
all of them.

    metric = dplib.PerceptualSimilarity("convnext_tiny", ("early", "mid"), calibration="convnext.pt")
    d = metric(x, y)                      # (N,) distances; x, y RGB batches in [0, 1]
    maps = metric(x, y, spatial=True)     # (N, 1, H, W) at the input's size, as lpips's spatial
    alex = dplib.PerceptualSimilarity.from_lpips("alex")   # the lpips package's own weights

d(x, y) = sum over points n of mean_hw sum_c w_nc (z_nchw - z0_nchw)^2, with z the features
unit-normalised over channels: Eq. 1 with a weight per channel. Without a calibration w = 1
(the baseline: Benchmark 1's metric, the lpips package's lpips=False). A calibration file
(`dplib calibrate`, dplib.calibration) holds non-negative weights per channel trained on
BAPPS's 2AFC judgements ("lin"), and for "tune" and "scratch" the network's weights too.
"""

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .lossnets import LossNetwork, register_points
from .losses import unit_normalize
from .errors import InputError, MissingData, Unavailable

FORMAT = "dplib-calibration/1"
# The lpips package's layers: the output after these `.features` children (its slices, its
# names: lpips/pretrained_networks.py), registered as named points of the three networks.
LPIPS_NETWORKS = {
    "alex": ("alexnet", {"relu1": 1, "relu2": 4, "relu3": 7, "relu4": 9, "relu5": 11}),
    "vgg": ("vgg16", {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}),
    "squeeze": ("squeezenet1_1", {"relu1": 1, "relu2": 4, "relu3": 7, "relu4": 9, "relu5": 10, "relu6": 11,
                                  "relu7": 12}),
}
for _arch, _points in LPIPS_NETWORKS.values():
    register_points(_arch, _points)
# lpips's ScalingLayer (version 0.1) on [-1, 1] input: ImageNet's mean and std in those units
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
INPUT_SCALINGS = ("imagenet", "none", "lpips 0.1", "lpips 0.0")


def _lpips_unit_normalize(features):
    # lpips's normalize_tensor: x / (||x|| + 1e-10), the norm over channels (from_lpips only)
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


class PerceptualSimilarity(nn.Module):
    """d(x, y) per pair of images (see the module docstring).

    arch, points, weights, inception_transform, seed: as LossNetwork. calibration: None (the
    baseline, w = 1), a file written by `dplib calibrate` / `save_calibration`, or its dict.
    input_scaling: "imagenet" (ImageNet's mean and std: the paper's Benchmark 1 and lpips
    0.1), "none" (raw [0, 1]), or lpips's own arithmetic, "lpips 0.1" (its ScalingLayer on
    2x - 1) and "lpips 0.0" (2x - 1 alone), which from_lpips uses. Inputs are RGB batches in
    [0, 1], checked.
    """

    def __init__(self, arch, points="late", calibration=None, weights="imagenet", input_scaling="imagenet",
                 inception_transform=False, seed=0):
        super().__init__()
        if input_scaling not in INPUT_SCALINGS:
            raise InputError(f"input_scaling must be one of {', '.join(INPUT_SCALINGS)}, got {input_scaling!r}")
        if isinstance(calibration, (str, Path)):
            calibration = load_calibration(calibration)
        if calibration is not None and calibration["variant"] == "scratch":
            weights = None  # its network's weights come from the file
        self.network = LossNetwork(arch, points, weights=weights, normalize_input=input_scaling == "imagenet",
                                   inception_transform=inception_transform, seed=seed)
        self.arch, self.points, self.input_scaling = arch, self.network.points, input_scaling
        self.normalize = _lpips_unit_normalize if input_scaling.startswith("lpips") else unit_normalize
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.channel_weights = None  # {point: (C,)} or None for the baseline
        self.variant = "baseline"
        if calibration is not None:
            self.use_calibration(calibration)

    def use_calibration(self, calibration):
        """Take a calibration's weights (the dict load_calibration returns)."""
        if calibration["arch"] != self.arch or tuple(calibration["points"]) != tuple(self.points):
            raise InputError(f"the calibration is for {calibration['arch']} at {'/'.join(calibration['points'])}, "
                             f"not {self.arch} at {'/'.join(self.points)}: build the metric with those")
        if calibration.get("network") is not None:
            self.network.load_state_dict(calibration["network"])
        self.channel_weights = nn.ParameterDict({p: nn.Parameter(w.float().clone(), requires_grad=False)
                                                 for p, w in calibration["channel_weights"].items()})
        self.variant = calibration["variant"]

    @classmethod
    def from_lpips(cls, net="alex", version="0.1", weights="imagenet"):
        """The lpips package's calibrated metric: its lin weights (shipped in its wheel) on its
        layers of torchvision's ImageNet network, its input scaling. Equal to
        lpips.LPIPS(net=net, version=version) (tests/test_similarity.py)."""
        if net not in LPIPS_NETWORKS or version not in ("0.1", "0.0"):
            raise InputError(f"from_lpips takes net alex, vgg or squeeze and version '0.1' or '0.0', got "
                             f"{net!r}, {version!r}")
        spec = importlib.util.find_spec("lpips")
        if spec is None:
            raise Unavailable("from_lpips reads the weights the lpips package ships: pip install lpips")
        arch, points = LPIPS_NETWORKS[net]
        state = torch.load(Path(spec.origin).parent / "weights" / f"v{version}" / f"{net}.pth", map_location="cpu",
                           weights_only=True)
        lins = [state[f"lin{k}.model.1.weight"].flatten() for k in range(len(points))]  # (1, C, 1, 1) each
        metric = cls(arch, tuple(points), weights=weights, input_scaling=f"lpips {version}")
        metric.use_calibration({"arch": arch, "points": tuple(points), "variant": "lin", "network": None,
                            "channel_weights": dict(zip(points, lins))})
        return metric

    def _scaled(self, x):
        if self.input_scaling.startswith("lpips"):
            x = 2 * x - 1
            if self.input_scaling == "lpips 0.1":
                x = (x - self.shift) / self.scale
            return self.network._features(x)  # already [-1, 1]-based: past the [0, 1] check done below
        return self.network(x)

    def point_maps(self, x, y):
        """{point: (N, 1, h, w)}: the weighted squared difference of the unit-normalised features."""
        from .lossnets import check_images

        check_images(x)
        check_images(y)
        if x.shape != y.shape:
            raise InputError(f"the two image batches differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
        features = self._scaled(torch.cat([x, y]))                           # one pass: (2N, C, h, w) per point
        maps = {}
        for point, f in features.items():
            fx, fy = self.normalize(f).chunk(2)
            squared = (fx - fy).pow(2)                                       # (N, C, h, w)
            if self.channel_weights is None:
                maps[point] = squared.sum(dim=1, keepdim=True)
            else:  # a 1x1 convolution without bias, as lpips's lin layer
                maps[point] = F.conv2d(squared, self.channel_weights[point].view(1, -1, 1, 1))
        return maps

    def distances(self, x, y, spatial=False):
        """{point: (N,)} distances, or with spatial {point: (N, 1, H, W)} at the input's size."""
        maps = self.point_maps(x, y)
        if spatial:
            return {p: F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
                    for p, m in maps.items()}
        return {p: m.mean(dim=(1, 2, 3)) for p, m in maps.items()}

    def forward(self, x, y, spatial=False):
        """(N,) distances summed over the points; spatial: (N, 1, H, W) maps, summed."""
        return sum(self.distances(x, y, spatial=spatial).values())

    def extra_repr(self):
        return f"arch={self.arch!r}, points={self.points}, variant={self.variant!r}"


def save_calibration(path, metric, **about):
    """Write `metric`'s calibration: its channel weights, for tune/scratch its network's
    weights, and what they are (`about`: recipe, data, scores, versions, ...). Plain tensors,
    strings and numbers, so load_calibration reads it with weights_only=True."""
    from .atomic import atomic_write

    if metric.channel_weights is None:
        raise InputError("the metric is the uncalibrated baseline: there are no weights to save")
    saved = {"format": FORMAT, "arch": metric.arch, "points": list(metric.points), "variant": metric.variant,
              "channel_weights": {p: w.detach().cpu().clone() for p, w in metric.channel_weights.items()},
              "network": ({k: v.detach().cpu().clone() for k, v in metric.network.state_dict().items()}
                         if metric.variant in ("tune", "scratch") else None),
              "versions": {"torch": str(torch.__version__), **_versions()}, **about}
    with atomic_write(path, "wb") as handle:
        torch.save(saved, handle)
    return Path(path)


def load_calibration(path):
    """The dict save_calibration wrote (weights_only: a calibration file cannot run code)."""
    path = Path(path)
    if not path.is_file():
        raise MissingData(f"no calibration file at {path}: make one with `dplib calibrate ARCH --points ... "
                                "--bapps DIR --out FILE`")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise InputError(f"{path} is not a dplib calibration file ({FORMAT}); lpips's own weights load with "
                         "PerceptualSimilarity.from_lpips")
    return saved


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"dplib": version("dplib")}
    except PackageNotFoundError:
        return {}


# ----- two images, or two folders of same-named images (`dplib similarity A B`) ------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def image_pairs(first, second):
    """[(name, path in first, path in second)]: two image files, or the same-named images of two
    folders (as the lpips package's lpips_2dirs.py pairs them); folders whose image names differ
    are refused, naming what each lacks."""
    first, second = Path(first), Path(second)
    for path in (first, second):
        if not path.exists():
            raise MissingData(f"{path} does not exist: give two images or two folders of images")
    if first.is_file() and second.is_file():
        return [(first.name, first, second)]
    if not (first.is_dir() and second.is_dir()):
        raise InputError(f"give two images or two folders, not a {'folder' if first.is_dir() else 'file'} and a "
                         f"{'folder' if second.is_dir() else 'file'} ({first}, {second})")
    names = [{p.name: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES} for folder in (first, second)]
    only = [sorted(set(a) - set(b)) for a, b in ((names[0], names[1]), (names[1], names[0]))]
    if only[0] or only[1]:
        detail = "; ".join(f"{len(o)} only in {folder} (e.g. {o[0]})" for o, folder in zip(only, (first, second)) if o)
        raise InputError(f"the folders do not hold the same image names: {detail}")
    if not names[0]:
        raise InputError(f"{first} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return [(name, names[0][name], names[1][name]) for name in sorted(names[0])]


@torch.no_grad()
def distances(metric, pairs, device="cpu", progress=True):
    """[(name, distance)] of each pair of image files through `metric`, one pair at a time (the
    images of a pair must have one size); every image is read first, so a broken one stops the
    command before any distance is computed."""
    from .data.files import image_problem, read_image
    from .progress import tqdm

    for name, a, b in pairs:
        for path in (a, b):
            problem = image_problem(path)
            if problem:
                raise InputError(f"{path} is not an image dplib can read: {problem}")
    images = [(name, read_image(a), read_image(b)) for name, a, b in pairs]
    for name, x, y in images:
        if x.shape != y.shape:
            raise InputError(f"{name}: the two images differ in size ({x.shape[2]} x {x.shape[1]} and "
                             f"{y.shape[2]} x {y.shape[1]} px); resize one to the other's first")
    metric = metric.to(device).eval()
    return [(name, float(metric(x[None].to(device), y[None].to(device))[0]))
            for name, x, y in tqdm(images, desc="distances", unit="pair", disable=not progress)]
