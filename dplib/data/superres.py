"""Benchmark 2's data: COCO-2014 for training and validation, Set5 / Set14 / BSD100 for testing.

On disk under ROOT (what `download` writes, and the fixture too):

    coco/annotations/captions_train2014.json, captions_val2014.json   (image lists)
    coco/train2014/COCO_train2014_*.jpg      only the images a run samples (10,000, seeded)
    coco/val2014/COCO_val2014_*.jpg          only the 100 validation images
    Set5/*.png, Set14/*.png, BSD100/*.png    high-resolution test images

Degradation (the paper, after Johnson et al.): Gaussian blur with sigma 1.0 (7x7 kernel),
then bicubic downsampling by the scale factor (no further antialiasing). Targets are
288x288 crops; test images are used whole, cropped only to a multiple of the scale.
"""

import json
import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from . import download as downloads

COCO_IMAGES = "http://images.cocodataset.org/"
COCO_ANNOTATIONS = "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"
# Set5, Set14 and B100 (BSD100) high-resolution images, as bundled by the EDSR authors.
BENCHMARK_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
TEST_SETS = ("Set5", "Set14", "BSD100")
SHA256 = {}  # not pinned: no published checksums, and none could be taken here (no network)


def check_scale(scale):
    if scale < 2 or 2 ** round(math.log2(scale)) != scale:
        raise ValueError(f"scale must be a power of two (the paper uses 4 and 8), got {scale}")


def degrade(hr, scale):
    """Gaussian blur (sigma 1.0) then bicubic downsampling: (N, 3, H, W) -> (N, 3, H/scale, W/scale).

    H and W must be multiples of `scale`. Runs on whatever device `hr` is on."""
    check_scale(scale)
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ValueError(f"image of {tuple(hr.shape[-2:])} px is not a multiple of the scale {scale}")
    blurred = TF.gaussian_blur(hr, kernel_size=7, sigma=1.0)
    low = F.interpolate(blurred, scale_factor=1 / scale, mode="bicubic", align_corners=False, antialias=False)
    return low.clamp(0, 1)


def _missing(root, what, name="superres"):
    return FileNotFoundError(f"{what} not found under {root}; run `dplib data download {name} --root {root}` "
                             f"(or `dplib data fixtures {name} --root {root}` for the tiny test version)")


def load_image(path):
    """An image file as (3, H, W) float in [0, 1]; a clear error names a corrupt file."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot decode the image {path}: {error}; delete it and download again") from error
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


def coco_list(root, split):
    """File names of a COCO-2014 split, in the annotation file's order."""
    path = Path(root) / "coco" / "annotations" / f"captions_{split}2014.json"
    if not path.is_file():
        raise _missing(root, f"COCO-2014 annotations ({path.name})")
    images = json.loads(path.read_text())["images"]
    return [(image["file_name"], image["width"], image["height"]) for image in images]


def sample_coco(root, split, count, seed=0, min_size=288):
    """`count` file names of a COCO split drawn with a fixed seed among images at least
    `min_size` on both sides; returns (names, number of smaller images skipped)."""
    images = coco_list(root, split)
    large = sorted(name for name, width, height in images if min(width, height) >= min_size)
    skipped = len(images) - len(large)
    random.Random(seed).shuffle(large)
    return large[:count], skipped


class CocoCrops(Dataset):
    """COCO images as random `crop` x `crop` targets in [0, 1]; the low-resolution input is
    made from the batch by `degrade` (on the training device: it is cheap there)."""

    def __init__(self, root, split="train", count=10_000, crop=288, seed=0, center=False):
        self.folder = Path(root) / "coco" / f"{split}2014"
        self.names, self.skipped_small = sample_coco(root, split, count, seed=seed, min_size=crop)
        missing = [n for n in self.names if not (self.folder / n).is_file()]
        if missing:
            raise _missing(root, f"{len(missing)} of the {len(self.names)} sampled COCO {split} images "
                                 f"(e.g. {missing[0]})")
        self.crop, self.center, self.seed = crop, center, seed

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        image = load_image(self.folder / self.names[i])
        if self.center:
            return TF.center_crop(image, [self.crop, self.crop])
        top = random.randint(0, image.shape[1] - self.crop)
        left = random.randint(0, image.shape[2] - self.crop)
        return image[:, top:top + self.crop, left:left + self.crop]


class CachedCrops(Dataset):
    """Decoded crops kept in one uint8 file (N, 3, crop, crop): one decode per image per
    run instead of one per epoch. Built once from a CocoCrops (fixed seeded crops)."""

    def __init__(self, source, path):
        path = Path(path)
        shape = (len(source), 3, source.crop, source.crop)
        if not path.is_file() or path.stat().st_size != np.prod(shape):
            temporary = path.with_name(path.name + ".tmp")
            path.parent.mkdir(parents=True, exist_ok=True)
            array = np.memmap(temporary, dtype=np.uint8, mode="w+", shape=shape)
            state = random.getstate()
            random.seed(source.seed)
            for i in range(len(source)):
                array[i] = (source[i] * 255).round().byte().numpy()
            random.setstate(state)
            array.flush()
            del array
            temporary.replace(path)
        self.array = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)

    def __len__(self):
        return len(self.array)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(self.array[i])).float() / 255


def test_images(root, name, scale):
    """A test set's high-resolution images, each cropped to a multiple of `scale`: [(name, (3, H, W))]."""
    folder = Path(root) / name
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg"))
    if not files:
        raise _missing(root, f"the {name} test set")
    images = []
    for path in files:
        image = load_image(path)
        height, width = (image.shape[1] // scale) * scale, (image.shape[2] // scale) * scale
        images.append((path.stem, image[:, :height, :width]))
    return images


# ----- download -----------------------------------------------------------------------------

def download(root, count=10_000, validation=100, seed=0, min_size=288, base_url=COCO_IMAGES,
             annotations_url=COCO_ANNOTATIONS, benchmark_url=BENCHMARK_URL, workers=8):
    """Download what Benchmark 2 needs: COCO-2014 annotations, then only the seeded sample of
    train and validation images (in parallel), and the three test sets. Resumable."""
    root = Path(root)
    annotations = root / "coco" / "annotations"
    if not (annotations / "captions_train2014.json").is_file():
        archive = downloads.fetch(annotations_url, root / ".downloads" / Path(annotations_url).name)
        downloads.extract(archive, root / "coco")
        archive.unlink()
    for split, n in (("train", count), ("val", validation)):
        names, _ = sample_coco(root, split, n, seed=seed, min_size=min_size)
        folder = root / "coco" / f"{split}2014"
        todo = [name for name in names if not (folder / name).is_file()]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda name: downloads.fetch(f"{base_url}{split}2014/{name}", folder / name,
                                                       progress=False), todo))
    if not all((root / name).is_dir() for name in TEST_SETS):
        archive = downloads.fetch(benchmark_url, root / ".downloads" / "benchmark.tar", sha256=SHA256.get("benchmark"))
        staging = root / ".downloads" / "benchmark"
        downloads.extract(archive, staging)
        for name, source in (("Set5", "Set5"), ("Set14", "Set14"), ("BSD100", "B100")):
            found = next(staging.glob(f"**/{source}/HR"), None)
            if found is None:
                raise downloads.DownloadError(f"{benchmark_url} did not contain {source}/HR")
            target = root / name
            target.mkdir(parents=True, exist_ok=True)
            for image in found.iterdir():
                image.replace(target / image.name)
        archive.unlink()
    return root


# ----- fixture ------------------------------------------------------------------------------

def write_fixture(root, train=12, validation=4, test=(3, 3, 3), size=(320, 352), seed=0):
    """A tiny Benchmark 2 dataset in the real layout, cut from scikit-image's photographs:
    COCO-style JPEGs with caption-annotation image lists, and PNG test sets."""
    from .bapps import _photographs

    root = Path(root)
    rng = np.random.default_rng(seed)
    photographs = _photographs()

    def cut(height, width):
        photo = photographs[rng.integers(len(photographs))]
        scale = max(height / photo.shape[1], width / photo.shape[2]) * rng.uniform(1.0, 1.4)
        resized = F.interpolate(photo[None], scale_factor=scale, mode="bilinear", antialias=True,
                                align_corners=False)[0]
        top = rng.integers(0, resized.shape[1] - height + 1)
        left = rng.integers(0, resized.shape[2] - width + 1)
        crop = resized[:, top:top + height, left:left + width].clamp(0, 1)
        return Image.fromarray((crop.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))

    for split, count in (("train", train), ("val", validation)):
        folder = root / "coco" / f"{split}2014"
        folder.mkdir(parents=True, exist_ok=True)
        images = []
        for i in range(count):
            height, width = size if i % 4 else (80, 88)  # every 4th is smaller than the smoke crop (96)
            name = f"COCO_{split}2014_{i + 1:012d}.jpg"
            cut(height, width).save(folder / name, quality=92)
            images.append({"id": i + 1, "file_name": name, "width": width, "height": height})
        annotations = root / "coco" / "annotations"
        annotations.mkdir(parents=True, exist_ok=True)
        (annotations / f"captions_{split}2014.json").write_text(json.dumps({"images": images, "annotations": []}))
    for name, count in zip(TEST_SETS, test):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            height, width = int(rng.integers(90, 140)), int(rng.integers(90, 140))  # not multiples of 8
            cut(height, width).save(folder / f"img_{i:03d}.png")
    return root
