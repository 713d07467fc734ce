"""The Massachusetts Roads Dataset (Mnih 2013) of Benchmark 3, as distributed:

    ROOT/{train,valid,test}/sat/<name>.tiff   RGB aerial tiles, 1500x1500
    ROOT/{train,valid,test}/map/<name>.tif    road masks (0 / 255)
    (1108 / 14 / 49 tiles)

Tiles are RESIZED WHOLE to `size` x `size` (the paper: "input patches resized to 224 x
224") for validation and testing, and for training by default (RoadTiles). Images and masks
are resized alike, bilinear, as tensors: without antialiasing as the authors' code resized
them (ToTensor, then torchvision's Resize of a tensor, which antialiased only from 0.17 on),
or with it (antialias=True); masks are kept soft in [0, 1] for the loss and binarised at
0.5 for scoring. The authors' code trained on random size x size windows at native
resolution, flipped left-right half the time (RoadCrops, train_transform="crop_flip").
"""

import random
import re
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from . import download as downloads, files, manifest
from .files import missing, read_image, resize
from ..errors import InputError

URL = "https://www.cs.toronto.edu/~vmnih/data/mass_roads/"
# Published facts: 1171 tiles of 1500 x 1500 px split 1108 / 14 / 49 (Mnih 2013; the three
# split lists of Lasagne/Recipes' MRD example have 1108, 14 and 49 lines); aerial images as
# .tiff, road masks (0 / 255) as .tif (the scrapers' filters and Lasagne/Recipes' loader).
SPLITS = {"train": 1108, "valid": 14, "test": 49}
TILE = (1500, 1500)
KINDS = {"sat": ".tiff", "map": ".tif"}


def _missing(root, what):
    return missing("roads", root, what)


TRAIN_TRANSFORMS = ("resize", "crop_flip")


def tile_files(root, split, limit=None):
    """[(name, image path, mask path)] of a split, paired by name and sorted."""
    root = Path(root)
    sat, maps = root / split / "sat", root / split / "map"
    if not sat.is_dir() or not maps.is_dir():
        raise _missing(root, f"the {split} split ({split}/sat, {split}/map)")
    images = {p.stem: p for p in sat.iterdir() if p.suffix.lower() in (".tif", ".tiff")}
    masks = {p.stem: p for p in maps.iterdir() if p.suffix.lower() in (".tif", ".tiff")}
    if images.keys() != masks.keys() or not images:
        unpaired = sorted(images.keys() ^ masks.keys())[:5]
        raise InputError(f"{root / split}: {len(images)} images and {len(masks)} masks do not pair up by name "
                         f"(e.g. {unpaired}); the download may be incomplete, run it again")
    names = sorted(images)[:limit] if limit else sorted(images)
    return [(n, images[n], masks[n]) for n in names]


class RoadTiles(Dataset):
    """(image (3, size, size), mask (1, size, size)) float pairs in [0, 1] of one split, each
    tile resized whole. Decoded and resized once and kept in memory as uint8 (the 1108
    training tiles at 224 px take 220 MB)."""

    def __init__(self, root, split, size, antialias, limit=None):
        files = tile_files(root, split, limit)
        self.names = [name for name, _, _ in files]
        to_byte = lambda t: (t * 255).round().to(torch.uint8)  # noqa: E731
        self.images = torch.stack([to_byte(resize(read_image(image, "RGB"), (size, size), antialias))
                                   for _, image, _ in files])             # (N, 3, size, size) uint8
        self.masks = torch.stack([to_byte(resize(read_image(mask, "L"), (size, size), antialias))
                                  for _, _, mask in files])               # (N, 1, size, size) uint8, soft
        self.size = size

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        return self.images[i].float() / 255, self.masks[i].float() / 255


class RoadCrops(Dataset):
    """The authors' training transform: a random size x size window of a tile at its native
    resolution (1500 px), flipped left-right with probability 0.5. Tiles are read from disk
    per item (all 1108 at 1500 px would take 7.5 GB of memory)."""

    def __init__(self, root, split, size, limit=None):
        self.files = tile_files(root, split, limit)
        self.names = [name for name, _, _ in self.files]
        self.size = size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        _, image_path, mask_path = self.files[i]
        image, mask = read_image(image_path, "RGB"), read_image(mask_path, "L")   # (3, H, W), (1, H, W)
        top = random.randint(0, image.shape[1] - self.size)
        left = random.randint(0, image.shape[2] - self.size)
        image = image[:, top:top + self.size, left:left + self.size]
        mask = mask[:, top:top + self.size, left:left + self.size]
        if random.random() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image.contiguous(), mask.contiguous()


def training_set(root, size, transform, antialias, limit=None):
    """The training split for train_transform "resize" (the paper's text) or "crop_flip" (the authors')."""
    if transform == "resize":
        return RoadTiles(root, "train", size, antialias, limit=limit)
    if transform == "crop_flip":
        return RoadCrops(root, "train", size=size, limit=limit)
    raise InputError(f"unknown train transform {transform!r}; choose one of {', '.join(TRAIN_TRANSFORMS)}")


# ----- download and verify ------------------------------------------------------------------
# The host's index pages list every tile as one line `<a href="URL">NAME</a>` followed by a
# line break; the hrefs are absolute URLs in the forms the public scrapers of these pages
# record (http or https, and on the sibling buildings dataset a doubled slash,
# `.../sat//NAME.tiff`): the authors' `mrd_collector` (src/dataset_collector.py of their
# released code) slices exactly `link[9:-10]` of each line. Any href whose last path segment
# is a .tif/.tiff file is a tile; it is fetched from its folder under `base_url`, whichever
# form the page gives.

def _listing(page):
    """Tile file names linked from an index page, whatever the form of their hrefs."""
    names = set()
    for href in re.findall(r"""href\s*=\s*["']([^"']+)["']""", page, flags=re.IGNORECASE):
        name = urllib.parse.urlsplit(href).path.rstrip("/").rsplit("/", 1)[-1]
        if name.lower().endswith((".tif", ".tiff")):
            names.add(name)
    return sorted(names)


def _read_index(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read().decode("utf-8", errors="replace")


def download(root, needs, base_url=None, workers=8, progress=True):
    """Download the tiles of the splits `needs["splits"]` lists from the dataset's index pages,
    in parallel (complete files skipped, partial ones resumed), record them in the manifest,
    then verify the splits: an index page that lists no tile, or a download that fetched too
    little, stops with a DownloadError naming what is missing. Returns root."""
    root, base_url = Path(root), base_url or URL
    jobs = []
    for split in _ordered(needs["splits"]):
        for kind in KINDS:
            index = f"{base_url}{split}/{kind}/index.html"
            try:
                names = _listing(_read_index(index))
            except OSError as error:
                raise downloads.DownloadError(f"cannot read the file list {index} ({error}); offline, put the "
                                              f"tiles into {root / split / kind} by hand") from error
            if not names:
                raise downloads.DownloadError(f"{index} lists no tiles (no href to a .tif or .tiff file): the page "
                                              "may have changed; nothing was downloaded")
            jobs += [(f"{base_url}{split}/{kind}/{name}", root / split / kind / name) for name in names]
    todo = [(url, path) for url, path in jobs if not path.is_file()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(downloads.tqdm(pool.map(lambda job: downloads.fetch(job[0], job[1], progress=False), todo),
                            total=len(todo), desc="roads tiles", unit="tile", disable=not progress))
    manifest.write(root, "roads", [path for _, path in jobs], progress=progress)
    downloads.raise_for(verify(root, needs, full=True), "roads", root)
    return root


def _ordered(splits):
    return [s for s in SPLITS if s in set(splits)]


def verify(root, needs, full=False):
    """Problems, one line each, of the splits `needs["splits"]`: tiles missing against the
    published counts (a fixture's own counts for a fixture), images and masks that do not
    pair up, and with full=True every tile decoded to its published size and every file
    checked against the manifest's sha256. [] when all is well."""
    root = Path(root)
    fixture = manifest.read(root) if manifest.is_fixture(root) else None
    problems, whole = [], []
    for split in _ordered(needs["splits"]):
        before = len(problems)
        expected = fixture["counts"][split] if fixture else SPLITS[split]
        found = {}
        for kind, suffix in KINDS.items():
            folder = root / split / kind
            found[kind] = {p.stem: p for p in folder.glob(f"*{suffix}")} if folder.is_dir() else {}
            if len(found[kind]) != expected:
                problems.append(f"{split}/{kind}: {len(found[kind])} of the {expected} {suffix} files")
        unpaired = sorted(found["sat"].keys() ^ found["map"].keys())
        if unpaired and len(found["sat"]) == len(found["map"]):
            problems.append(f"{split}: images and masks do not pair up by name (e.g. {unpaired[0]})")
        if full:
            size = fixture["size"] if fixture else TILE
            for path in sorted(found["sat"].values()) + sorted(found["map"].values()):
                problem = files.image_problem(path, size)
                if problem:
                    problems.append(f"{split}: {problem}")
        if len(problems) == before:
            whole.append(f"{split}/")
    return problems + manifest.check(root, lambda path: path.startswith(tuple(whole)), checksums=full)


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
    written = [p for split, _ in counts for kind in KINDS for p in (root / split / kind).iterdir()]
    manifest.write(root, "roads", written, fixture=True, progress=False,
                    extra={"counts": dict(counts), "size": [size, size]})
    return root
