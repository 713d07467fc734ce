"""The Massachusetts Roads Dataset (Mnih 2013) of Benchmark 3, as distributed:

    ROOT/{train,valid,test}/sat/<name>.tiff   RGB aerial tiles, 1500x1500
    ROOT/{train,valid,test}/map/<name>.tif    road masks (0 / 255)
    (1108 / 14 / 49 tiles)

Tiles are RESIZED WHOLE to `size` x `size` (the paper: 224), at training and at test time
alike (the original code trained on crops and tested on resized tiles). Images are
resized with antialiasing; masks are resized the same way and kept soft in [0, 1] for the
loss, and binarised at 0.5 for scoring.
"""

import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from . import download as downloads

URL = "https://www.cs.toronto.edu/~vmnih/data/mass_roads/"
SPLITS = {"train": 1108, "valid": 14, "test": 49}


def _missing(root, what):
    return FileNotFoundError(f"{what} not found under {root}; run `dplib data download roads --root {root}` "
                             f"(or `dplib data fixtures roads --root {root}` for the tiny test version)")


def _read(path, mode):
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode), dtype=np.float32) / 255
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot decode {path}: {error}; delete it and download again") from error


def _resize(tensor, size):
    return F.interpolate(tensor[None], size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(0, 1)


class RoadTiles(Dataset):
    """(image (3, size, size), mask (1, size, size)) float pairs in [0, 1] of one split.

    Tiles are decoded and resized once and kept in memory as uint8 (the 1108 training
    tiles at 224 px take 220 MB)."""

    def __init__(self, root, split, size=224, limit=None):
        root = Path(root)
        sat, maps = root / split / "sat", root / split / "map"
        if not sat.is_dir() or not maps.is_dir():
            raise _missing(root, f"the {split} split ({split}/sat, {split}/map)")
        images = {p.stem: p for p in sat.iterdir() if p.suffix.lower() in (".tif", ".tiff")}
        masks = {p.stem: p for p in maps.iterdir() if p.suffix.lower() in (".tif", ".tiff")}
        if images.keys() != masks.keys() or not images:
            unpaired = sorted(images.keys() ^ masks.keys())[:5]
            raise ValueError(f"{root / split}: {len(images)} images and {len(masks)} masks do not pair up by name "
                             f"(e.g. {unpaired}); the download may be incomplete, run it again")
        self.names = sorted(images)[:limit] if limit else sorted(images)
        to_byte = lambda t: (t * 255).round().to(torch.uint8)  # noqa: E731
        self.images = torch.stack([to_byte(_resize(torch.from_numpy(_read(images[n], "RGB")).permute(2, 0, 1), size))
                                   for n in self.names])                      # (N, 3, size, size) uint8
        self.masks = torch.stack([to_byte(_resize(torch.from_numpy(_read(masks[n], "L"))[None], size))
                                  for n in self.names])                       # (N, 1, size, size) uint8, soft
        self.size = size

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        return self.images[i].float() / 255, self.masks[i].float() / 255


# ----- download -----------------------------------------------------------------------------

def _listing(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        page = response.read().decode("utf-8", errors="replace")
    return sorted(set(re.findall(r'href="([^"/?]+\.tiff?)"', page)))


def download(root, base_url=URL, workers=8, splits=tuple(SPLITS)):
    """Download the tiles listed on the dataset's index pages, in parallel; files already
    complete are skipped, partial ones resumed. Returns root."""
    root = Path(root)
    jobs = []
    for split in splits:
        for kind in ("sat", "map"):
            index = f"{base_url}{split}/{kind}/index.html"
            try:
                names = _listing(index)
            except OSError as error:
                raise downloads.DownloadError(f"cannot read the file list {index} ({error}); offline, put the "
                                              f"tiles into {root / split / kind} by hand") from error
            jobs += [(f"{base_url}{split}/{kind}/{name}", root / split / kind / name) for name in names]
    todo = [(url, path) for url, path in jobs if not path.is_file()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: downloads.fetch(job[0], job[1], progress=False), todo))
    return root


# ----- fixture ------------------------------------------------------------------------------

def _draw_tile(rng, size):
    """A synthetic aerial-like tile: textured ground, a few straight and bent roads."""
    from PIL import ImageDraw, ImageFilter

    ground = rng.normal([96, 110, 80], 18, size=(size, size, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(ground).filter(ImageFilter.GaussianBlur(2))
    mask = Image.new("L", (size, size), 0)
    draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(rng.integers(2, 5)):
        points = [tuple(rng.integers(0, size, 2).tolist()) for _ in range(rng.integers(2, 4))]
        width = int(rng.integers(5, 9))
        draw_image.line(points, fill=tuple(rng.integers(150, 200, 3).tolist()), width=width + 4)
        draw_mask.line(points, fill=255, width=width)
    return image, mask


def write_fixture(root, counts=(("train", 8), ("valid", 2), ("test", 3)), size=256, seed=0):
    """A tiny MRD in the real layout and formats: sat/*.tiff RGB, map/*.tif 0/255 masks."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in counts:
        for kind in ("sat", "map"):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, mask = _draw_tile(rng, size)
            name = f"{10000000 + i}_15"
            image.save(root / split / "sat" / f"{name}.tiff")
            mask.save(root / split / "map" / f"{name}.tif")
    return root
