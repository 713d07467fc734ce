"""Benchmark 2's data: COCO-2014 for training and validation, Set5 / Set14 / BSD100 for testing.

On disk under ROOT (what `download` writes, and the fixture too):

    coco/annotations/captions_train2014.json, captions_val2014.json   (image lists)
    coco/train2014/COCO_train2014_*.jpg      only the images a run samples (10,000, seeded)
    coco/val2014/COCO_val2014_*.jpg          only the 100 validation images
    Set5/*.png, Set14/*.png, BSD100/*.png    high-resolution test images

Pairs (high resolution, low resolution), in [0, 1], made by `make_pair` from a PIL image:
  crop "resize_center" (the authors' code): the short side resized to `crop` (PIL bilinear,
      antialiased), the centre crop x crop; the low-resolution image made from the WHOLE
      image the same way at crop / scale. One fixed pair per image.
  crop "random": a random crop x crop window at native resolution (images smaller than the
      crop are skipped); "center": its centre window (validation of "random");
  crop "whole": the whole image, cropped to a multiple of the scale (the test sets).
Degradation (the paper: "Gaussian blur with sigma = 1.0 and downsampling by the given
factor with bicubic interpolation"):
  "pil" (the authors' code): PIL's GaussianBlur(radius=1) on the 8-bit image, then PIL's
      bicubic resize, which is antialiased (its filter widens with the factor);
  "torch": a 7x7 Gaussian (sigma 1.0) then bicubic interpolation without antialiasing, on
      the training device (`degrade`).
"""

import json
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

from . import download as downloads, manifest
from ..cache import ArrayCache
from ..models.transformer_net import check_scale
from .files import image_problem, missing, open_image, read_image, to_tensor  # noqa: F401  (read_image: this module's API)
from ..errors import InputError

COCO_IMAGES = "http://images.cocodataset.org/"   # + {train,val}2014/COCO_{split}2014_<id:012d>.jpg
COCO_ANNOTATIONS = "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"
# The annotations zip as TensorFlow Datasets' checksum list records it
# (tensorflow_datasets/url_checksums/coco2014.txt): size and sha256. Its six members lie under
# annotations/ (captions_, instances_, person_keypoints_{train,val}2014.json); only the two
# caption files are extracted: their `images` lists give every image's name and size.
COCO_ANNOTATIONS_SIZE = 252_872_794
COCO_ANNOTATIONS_SHA256 = "031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009"
# Set5, Set14 and B100 (BSD100) as bundled by the EDSR authors (sanghyun-son/EDSR-PyTorch's
# README): benchmark/<set>/HR/*.png beside LR_bicubic/X{2,3,4}/ and Urban100; only the HR
# images of the three sets are kept. md5 as published with this URL by Coloquinte/torchSR
# (torchsr/datasets/benchmarks.py).
BENCHMARK_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
BENCHMARK_MD5 = "4ace41d33c2384b97e6b320cd0afd6ba"
TEST_SETS = ("Set5", "Set14", "BSD100")
TEST_SET_FOLDERS = {"Set5": "Set5", "Set14": "Set14", "BSD100": "B100"}  # ours -> the EDSR tar's
TEST_SET_SIZES = {"Set5": 5, "Set14": 14, "BSD100": 100}  # images per test set (their papers)
CROPS = ("resize_center", "random", "center", "whole")
DEGRADATIONS = ("pil", "torch")


def degrade(hr, scale):
    """The "torch" degradation: Gaussian blur (sigma 1.0, 7x7) then bicubic interpolation without
    antialiasing: (N, 3, H, W) -> (N, 3, H/scale, W/scale), on whatever device `hr` is on.
    H and W must be multiples of `scale`."""
    check_scale(scale)
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise InputError(f"image of {tuple(hr.shape[-2:])} px is not a multiple of the scale {scale}")
    blurred = TF.gaussian_blur(hr, kernel_size=7, sigma=1.0)
    low = F.interpolate(blurred, scale_factor=1 / scale, mode="bicubic", align_corners=False, antialias=False)
    return low.clamp(0, 1)


def pil_degrade(image, size):
    """The "pil" degradation of the authors' code: GaussianBlur(radius=1) (PIL's radius is the
    standard deviation), then PIL's antialiased bicubic resize to `size` (width, height)."""
    return image.filter(ImageFilter.GaussianBlur(radius=1)).resize(size, Image.Resampling.BICUBIC)


def _resize_short_side(image, side, resample):
    """PIL image with its short side resized to `side`, as torchvision's Resize(int) does."""
    width, height = image.size
    if width <= height:
        size = (side, int(side * height / width))
    else:
        size = (int(side * width / height), side)
    return image.resize(size, resample)


def _center(image, side):
    """The centre side x side window, its offsets rounded as torchvision's CenterCrop rounds them
    (int(round((w - side) / 2)), Python's round: halves to even), which the authors' code used."""
    left, top = int(round((image.size[0] - side) / 2.0)), int(round((image.size[1] - side) / 2.0))
    return image.crop((left, top, left + side, top + side))


def make_pair(image, scale, crop, crop_mode, degradation, rng=None):
    """(hr (3, h, w), lr (3, h/scale, w/scale) or None) from an RGB PIL image (module docstring).
    lr is None for degradation "torch": `degrade` makes it on the training device."""
    if crop_mode == "resize_center":
        hr = _center(_resize_short_side(image, crop, Image.Resampling.BILINEAR), crop)
        if degradation == "pil":
            small = crop // scale
            blurred = image.filter(ImageFilter.GaussianBlur(radius=1))
            return to_tensor(hr), to_tensor(_center(_resize_short_side(blurred, small, Image.Resampling.BICUBIC), small))
    elif crop_mode in ("random", "center"):
        if crop_mode == "random":
            left, top = (rng or random).randint(0, image.size[0] - crop), (rng or random).randint(0, image.size[1] - crop)
            hr = image.crop((left, top, left + crop, top + crop))
        else:
            hr = _center(image, crop)
    elif crop_mode == "whole":
        width, height = (image.size[0] // scale) * scale, (image.size[1] // scale) * scale
        hr = image.crop((0, 0, width, height))
    else:
        raise InputError(f"unknown crop {crop_mode!r}; choose one of {', '.join(CROPS)}")
    if degradation == "torch":
        return to_tensor(hr), None
    if degradation != "pil":
        raise InputError(f"unknown degradation {degradation!r}; choose one of {', '.join(DEGRADATIONS)}")
    return to_tensor(hr), to_tensor(pil_degrade(hr, (hr.size[0] // scale, hr.size[1] // scale)))


def _missing(root, what):
    return missing("superres", root, what)


def coco_list(root, split):
    """File names of a COCO-2014 split, in the annotation file's order."""
    path = Path(root) / "coco" / "annotations" / f"captions_{split}2014.json"
    if not path.is_file():
        raise _missing(root, f"COCO-2014 annotations ({path.name})")
    images = json.loads(path.read_text())["images"]
    return [(image["file_name"], image["width"], image["height"]) for image in images]


def min_size(crop_mode, crop):
    """The smallest image side a crop mode can use: "resize_center" resizes any image, the
    window crops ("random", "center") need `crop` px on both sides."""
    return 0 if crop_mode == "resize_center" else crop


def sample_coco(root, split, count, seed, min_size):
    """`count` file names of a COCO split drawn with a fixed seed among images at least
    `min_size` on both sides; returns (names, number of smaller images skipped)."""
    images = coco_list(root, split)
    large = sorted(name for name, width, height in images if min(width, height) >= min_size)
    skipped = len(images) - len(large)
    if count > len(large):
        raise InputError(f"asked for {count} COCO {split} images but the annotations list only {len(large)}"
                         f"{f' of at least {min_size} px' if min_size else ''}: give a smaller count "
                         "(train_images / val_images)")
    random.Random(seed).shuffle(large)
    return large[:count], skipped


class CocoPairs(Dataset):
    """Seeded COCO images as (hr, lr) training or validation pairs (`make_pair`); with
    degradation "torch", hr alone (the loss degrades it on the training device). Images smaller
    than the crop are skipped for crop "random" and "center", which cannot resize them."""

    def __init__(self, root, split, count, scale, crop, crop_mode, degradation, seed):
        if crop_mode not in ("resize_center", "random", "center"):
            raise InputError(f"unknown training crop {crop_mode!r}; choose resize_center, random or center")
        if degradation not in DEGRADATIONS:
            raise InputError(f"unknown degradation {degradation!r}; choose one of {', '.join(DEGRADATIONS)}")
        if crop % scale:
            raise InputError(f"the crop ({crop} px) must be a multiple of the scale ({scale})")
        self.folder = Path(root) / "coco" / f"{split}2014"
        self.names, self.skipped_small = sample_coco(root, split, count, seed, min_size(crop_mode, crop))
        missing = [n for n in self.names if not (self.folder / n).is_file()]
        if missing:
            raise _missing(root, f"{len(missing)} of the {len(self.names)} sampled COCO {split} images "
                                 f"(e.g. {missing[0]})")
        self.scale, self.crop, self.crop_mode, self.degradation, self.seed = scale, crop, crop_mode, degradation, seed

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        hr, lr = make_pair(open_image(self.folder / self.names[i]), self.scale, self.crop, self.crop_mode,
                           self.degradation)
        return hr if lr is None else (hr, lr)


class CachedPairs(Dataset):
    """A fixed-pair dataset (crop "resize_center" or "center") decoded once into uint8
    memory-mapped files: one decode per image per run instead of one per epoch."""

    def __init__(self, source, folder):
        if source.crop_mode == "random":
            raise InputError("random crops change every epoch and cannot be cached; use crop resize_center or center")
        self.pairs = source.degradation == "pil"
        small = source.crop // source.scale

        def rows(start, stop, part):
            items = [source[i] for i in range(start, stop)]
            tensors = [item[part] if self.pairs else item for item in items]
            return np.stack([(t * 255).round().byte().numpy() for t in tensors])

        tag = f"{source.crop_mode}_{source.crop}_x{source.scale}_{source.degradation}_seed{source.seed}_{len(source)}"
        self.hr = ArrayCache(Path(folder) / f"hr_{tag}.u8", (len(source), 3, source.crop, source.crop), np.uint8,
                             lambda a, b: rows(a, b, 0), batch=64, description="decoding pairs")
        self.lr = ArrayCache(Path(folder) / f"lr_{tag}.u8", (len(source), 3, small, small), np.uint8,
                             lambda a, b: rows(a, b, 1), batch=64, description="decoding pairs") if self.pairs else None

    def __len__(self):
        return len(self.hr)

    def __getitem__(self, i):
        hr = torch.from_numpy(np.array(self.hr.array[i])).float() / 255
        return (hr, torch.from_numpy(np.array(self.lr.array[i])).float() / 255) if self.pairs else hr


def validation_crop(train_crop):
    """The validation pairs' crop: as the training pairs', with the centre window in place of
    random ones (train_crop "random"), so that every validation sees the same images."""
    return "center" if train_crop == "random" else train_crop


def validation_pairs(root, count, scale, crop, train_crop, degradation, seed):
    """The validation pairs (validation_crop)."""
    return CocoPairs(root, "val", count=count, scale=scale, crop=crop, degradation=degradation, seed=seed,
                     crop_mode=validation_crop(train_crop))


def check_test_sets(root):
    """Stop with the download command unless Set5, Set14 and BSD100 are all in place."""
    for name in TEST_SETS:
        if not any(p.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg") for p in (Path(root) / name).glob("*")):
            raise _missing(root, f"the {name} test set")


def test_images(root, name, scale, crop, crop_mode, degradation):
    """A test set's (name, hr, lr or None) triples; by default each image whole, cropped to a
    multiple of `scale` (the paper); crop_mode "resize_center" as the authors' test code."""
    files = sorted(p for p in (Path(root) / name).glob("*") if p.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg"))
    if not files:
        raise _missing(root, f"the {name} test set")
    return [(path.stem, *make_pair(open_image(path), scale, crop, crop_mode, degradation)) for path in files]


# ----- download and verify ------------------------------------------------------------------

def needs(seed, train_images, val_images, crop, train_crop, test_sets=TEST_SETS):
    """What a Benchmark 2 run reads: its seeded COCO samples {(split, seed, count, min_size)}
    (drawn exactly as CocoPairs and validation_pairs draw them) and the test sets."""
    return {"coco": {("train", seed, train_images, min_size(train_crop, crop)),
                     ("val", seed, val_images, min_size(validation_crop(train_crop), crop))},
            "test_sets": set(test_sets)}


def _sampled(root, needs):
    """{split: set of sampled file names} of every sample `needs` lists (the annotations must exist)."""
    names = {}
    for split, seed, count, smallest in sorted(needs["coco"]):
        names.setdefault(split, set()).update(sample_coco(root, split, count, seed, smallest)[0])
    return names


def download(root, needs, workers=8, progress=True):
    """Download what Benchmark 2's runs read (`needs`): the COCO-2014 caption annotations (size
    and sha256 checked), then only the sampled train and validation images (in parallel), and
    the test sets (md5 checked); every file is recorded in the manifest, archives and staging
    folders are removed, and the result verified. Resumable. Returns root."""
    root = Path(root)
    base_url, annotations_url, benchmark_url = COCO_IMAGES, COCO_ANNOTATIONS, BENCHMARK_URL  # read now: a mirror may replace them
    annotations = root / "coco" / "annotations"
    written, archives = [], {}
    if not all((annotations / f"captions_{s}2014.json").is_file() for s in ("train", "val")):
        archive = downloads.fetch(annotations_url, root / ".downloads" / Path(annotations_url).name,
                                  sha256=COCO_ANNOTATIONS_SHA256, size=COCO_ANNOTATIONS_SIZE)
        downloads.extract(archive, root / "coco", members=lambda name: Path(name).name.startswith("captions_"))
        archives[archive.name] = {"size": archive.stat().st_size, "sha256": COCO_ANNOTATIONS_SHA256}
        archive.unlink()
    written += [annotations / f"captions_{s}2014.json" for s in ("train", "val")]
    for split, names in _sampled(root, needs).items():
        folder = root / "coco" / f"{split}2014"
        todo = [name for name in sorted(names) if not (folder / name).is_file()]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(downloads.tqdm(pool.map(lambda name: downloads.fetch(f"{base_url}{split}2014/{name}", folder / name,
                                                                      progress=False), todo),
                                total=len(todo), desc=f"COCO {split}2014", unit="image", disable=not progress))
        written += [folder / name for name in names]
    wanted = sorted(needs["test_sets"])
    if not all(any((root / name).glob("*.png")) for name in wanted):
        archive = downloads.fetch(benchmark_url, root / ".downloads" / "benchmark.tar", md5=BENCHMARK_MD5)
        staging = root / ".downloads" / "benchmark"
        downloads.extract(archive, staging)
        for name in wanted:
            found = next(staging.glob(f"**/{TEST_SET_FOLDERS[name]}/HR"), None)
            if found is None:
                raise downloads.DownloadError(f"{benchmark_url} did not contain {TEST_SET_FOLDERS[name]}/HR")
            target = root / name
            target.mkdir(parents=True, exist_ok=True)
            for image in found.iterdir():
                image.replace(target / image.name)
        archives[archive.name] = {"size": archive.stat().st_size, "md5": BENCHMARK_MD5}
        shutil.rmtree(staging)
        archive.unlink()
    written += [p for name in wanted for p in (root / name).glob("*.png")]
    if (root / ".downloads").is_dir() and not any((root / ".downloads").iterdir()):
        (root / ".downloads").rmdir()
    manifest.write(root, "superres", written, archives, progress=progress)
    downloads.raise_for(verify(root, needs, full=True), "superres", root)
    return root


def verify(root, needs, full=False):
    """Problems, one line each: the caption annotations missing, sampled COCO images missing
    (with full=True: each decoded at the size its annotation gives), test sets not of their
    published size (a fixture's own), and the files they read changed against the manifest.
    [] when all is well."""
    root = Path(root)
    fixture = manifest.read(root) if manifest.is_fixture(root) else None
    problems, whole = [], set()
    annotations = [f"coco/annotations/captions_{s}2014.json" for s in ("train", "val")]
    absent = [Path(a).name for a in annotations if not (root / a).is_file()]
    if absent:
        problems.append(f"COCO-2014 annotations missing ({', '.join(absent)})")
    else:
        whole.update(annotations)
        sizes = {split: {name: (width, height) for name, width, height in coco_list(root, split)}
                 for split in ("train", "val")}
        for split, names in _sampled(root, needs).items():
            folder = root / "coco" / f"{split}2014"
            lost = sorted(n for n in names if not (folder / n).is_file())
            if lost:
                problems.append(f"COCO {split}2014: {len(lost)} of the {len(names)} sampled images (e.g. {lost[0]})")
            bad = [problem for n in sorted(set(names) - set(lost))
                   if (problem := image_problem(folder / n, sizes[split][n]))] if full else []
            if bad:
                problems.append(f"COCO {split}2014: {len(bad)} images do not decode at their size (e.g. {bad[0]})")
            if not lost and not bad:
                whole.update(f"coco/{split}2014/{n}" for n in names)
    for name in sorted(needs["test_sets"]):
        expected = fixture["counts"][name] if fixture else TEST_SET_SIZES[name]
        images = sorted((root / name).glob("*.png"))
        found = [] if len(images) == expected else [f"{name}: {len(images)} of its {expected} images"]
        bad = [problem for path in images if (problem := image_problem(path))] if full else []
        found += [f"{name}: {len(bad)} unreadable images (e.g. {bad[0]})"] if bad else []
        problems += found
        whole.update([] if found else [f"{name}/{path.name}" for path in images])
    return problems + manifest.check(root, whole.__contains__, checksums=full)


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
    manifest.write(root, "superres", [f for f in root.rglob("*") if f.is_file()], fixture=True, progress=False,
                    extra={"counts": dict(zip(TEST_SETS, test))})
    return root
