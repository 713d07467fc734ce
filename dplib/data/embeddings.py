"""SVHN and STL-10 for Benchmark 4, read by torchvision's own dataset classes:

    ROOT/svhn/{extra,train,test}_32x32.mat           (SVHN: extra trains the autoencoder)
    ROOT/stl10/stl10_binary/{unlabeled,train,test}_X.bin, {train,test}_y.bin, ...

SVHN images are padded from 32x32 to 64x64 by reflection (the paper); STL-10 stays 96x96.
Files are checked once, not at every load: `download` checks every file's md5 (torchvision's
list) and records the files in the folder's manifest (dplib.data.manifest); a folder whose
manifest lists its files at their sizes is then read without torchvision's md5 pass over them
(1.3 GB for SVHN extra, 2.7 GB for STL-10 unlabeled, at every run), and `dplib data verify`
checks the md5s again on request. Files put in place by hand, without a manifest, get
torchvision's check at every load. A fixture's manifest marks it (`"fixture": true`): its tiny
files cannot have the real checksums. `_torchvision_class` is the one place this is decided.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import datasets

from ..errors import InputError, MissingData
from . import download as downloads, manifest

AUTOENCODER_SPLIT = {"svhn": "extra", "stl10": "unlabeled"}
SIZE = {"svhn": 64, "stl10": 96}
CLASSES = 10
_CLASSES = {"svhn": datasets.SVHN, "stl10": datasets.STL10}


def _folder(root, name):
    return Path(root) / name


def _torchvision_class(name, folder):
    """torchvision's class for `name`; for a folder whose manifest vouches for its files (a
    dplib download that checked their md5s, or a fixture), the same class without its md5
    pass at every load (module docstring)."""
    if name not in _CLASSES:
        raise InputError(f"unknown dataset {name!r}; choose svhn or stl10")
    cls = _CLASSES[name]
    recorded = manifest.read(folder)
    if recorded and recorded["files"] and not manifest.check(folder):
        return type(f"Checked{cls.__name__}", (cls,), {"_check_integrity": lambda self: True})
    return cls


STL10_ORIENTATIONS = ("upright", "transposed")


def load_split(name, root, split, *, orientation):
    """(images uint8 (N, 3, h, w), labels int64 (N,); -1 where unlabeled) of one split.

    orientation (STL-10): "upright", as torchvision reads the column-major binary files, or
    "transposed", height and width swapped, as the companion papers' released code read them
    (`np.reshape(..., (-1, 3, 96, 96))` without torchvision's transpose: a plain bug)."""
    if orientation not in STL10_ORIENTATIONS:
        raise InputError(f"unknown STL-10 orientation {orientation!r}; choose one of {', '.join(STL10_ORIENTATIONS)}")
    folder = _folder(root, name)
    cls = _torchvision_class(name, folder)
    try:
        dataset = cls(str(folder), split=split, download=False)
    except RuntimeError as error:
        raise MissingData(f"{name} {split} not found or corrupted under {folder} ({error}); run "
                                f"`dplib data download {name} --root {root}` (or `dplib data fixtures {name} "
                                f"--root {root}` for the tiny test version)") from error
    images = torch.from_numpy(np.ascontiguousarray(dataset.data))
    if name == "stl10" and orientation == "transposed":
        images = images.transpose(2, 3).contiguous()
    labels = torch.as_tensor(np.asarray(dataset.labels if dataset.labels is not None else []), dtype=torch.int64)
    if len(labels) != len(images):
        labels = torch.full((len(images),), -1, dtype=torch.int64)
    return images, labels


SVHN_PADDINGS = ("reflect", "tile")


def to_model_input(name, images, padding):
    """uint8 (N, 3, h, w) -> float (N, 3, s, s) in [0, 1]; SVHN padded 32 -> 64 by reflection of
    16 px on every side (the main paper: the digit centred) or "tile", the companion papers'
    released `np.pad(images, ((0, 0), (0, 0), (0, 32), (0, 32)), mode='wrap')`: a 2x2 tiling
    whose top-left quarter is the digit."""
    if padding not in SVHN_PADDINGS:
        raise InputError(f"unknown SVHN padding {padding!r}; choose one of {', '.join(SVHN_PADDINGS)}")
    x = images.float() / 255
    if name == "svhn":
        x = F.pad(x, (16, 16, 16, 16), mode="reflect") if padding == "reflect" else x.repeat(1, 1, 2, 2)
    return x


class Images(Dataset):
    """Items (image (3, s, s) in [0, 1], label, index); the index finds cached target features."""

    def __init__(self, name, images, labels, padding):
        self.name, self.images, self.labels, self.padding = name, images, labels, padding

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return to_model_input(self.name, self.images[i:i + 1], self.padding)[0], self.labels[i], i


SPLITS = ("random", "ordered")


def split_indices(count, seed, kind, validation=0.2):
    """An 80/20 split of range(count) into (train indices, validation indices):
    "random": seeded, int(0.2 N) validation items (the main paper's released
        `random_split(data, [N - int(N * 0.2), int(N * 0.2)])`, unseeded there: a seed makes
        it repeatable);
    "ordered": the first int(0.8 N) items train, the next int(0.2 N) validate (an item or two
        at the end may be in neither), the same in every repeat: the companion papers'
        released `split_data`, slices in file order."""
    if kind == "ordered":
        cut = int(count * (1 - validation))
        return torch.arange(cut), torch.arange(cut, min(cut + int(count * validation), count))
    if kind != "random":
        raise InputError(f"unknown split {kind!r}; choose one of {', '.join(SPLITS)}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    cut = count - int(count * validation)
    return order[:cut].sort().values, order[cut:].sort().values


# ----- download and verify ------------------------------------------------------------------
# Hosts, file names and md5s are torchvision's (datasets.SVHN.split_list; datasets.STL10's url,
# tgz_md5, train_list and test_list): SVHN is three .mat files (X: (32, 32, 3, N) uint8, y:
# (N, 1) with the digit 0 stored as 10), STL-10 one gzipped tar of stl10_binary/ (column-major
# uint8 images of 3 x 96 x 96, labels 1-10). Counts as the datasets' pages publish them.
COUNTS = {"svhn": {"train": 73_257, "test": 26_032, "extra": 531_131},
          "stl10": {"train": 5_000, "test": 8_000, "unlabeled": 100_000}}
STL10_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin"),
               "unlabeled": ("unlabeled_X.bin",)}


def needs(splits):
    """What a run reads of SVHN or STL-10: {"splits": ...}."""
    return {"splits": set(splits)}


def _svhn_files():
    """{split: (url, file name, md5)} as torchvision lists them."""
    return {split: tuple(entry) for split, entry in datasets.SVHN.split_list.items()}


def _stl10_md5s():
    return dict(datasets.STL10.train_list + datasets.STL10.test_list)


def download(root, needs, *, name, progress=True):
    """Download the splits `needs` lists into ROOT/<name>, md5-checked, without loading them:
    SVHN's .mat files one by one; STL-10's one archive, extracted safely and removed (its
    unlabeled split alone is 2.7 GB). Then verify. Returns the dataset's folder."""
    folder = _folder(root, name)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "svhn":
        for split in sorted(needs["splits"]):
            url, filename, md5 = _svhn_files()[split]
            downloads.fetch(url, folder / filename, md5=md5, progress=progress)
    elif name == "stl10":
        if verify(root, needs, name=name):  # something missing: the archive holds every split
            cls = datasets.STL10
            archive = downloads.fetch(cls.url, folder / ".downloads" / cls.filename, md5=cls.tgz_md5, progress=progress)
            downloads.extract(archive, folder)
            archive.unlink()
            (folder / ".downloads").rmdir()
    else:
        raise InputError(f"unknown dataset {name!r}; choose svhn or stl10")
    downloads.raise_for(verify(root, needs, full=True, name=name), name, root)
    manifest.write(folder, name, [p for p in folder.rglob("*") if p.is_file()], progress=progress)
    return folder


def verify(root, needs, full=False, *, name):
    """Problems, one line each, of the splits `needs` lists: files missing, image counts other
    than the published ones (read from the files' headers; a fixture's own counts for a
    fixture), and with full=True every file's md5 as torchvision lists it. [] when all is well."""
    folder = _folder(root, name)
    fixture = manifest.read(folder) if manifest.is_fixture(folder) else None
    problems = []
    for split in sorted(needs["splits"]):
        expected = fixture["counts"][split] if fixture else COUNTS[name][split]
        if name == "svhn":
            _, filename, md5 = _svhn_files()[split]
            path = folder / filename
            if not path.is_file():
                problems.append(f"svhn {split}: {filename} missing")
                continue
            try:
                shapes = {key: shape for key, shape, _ in loadmat_headers(path)}
            except ValueError as error:
                problems.append(f"svhn {split}: {error}")
                continue
            count = shapes.get("X", (0, 0, 0, 0))[-1]
            checks = [(path, md5)]
        else:
            paths = [folder / "stl10_binary" / f for f in STL10_FILES[split]]
            absent = [p.name for p in paths if not p.is_file()]
            if absent:
                problems.append(f"stl10 {split}: {', '.join(absent)} missing")
                continue
            count = paths[0].stat().st_size // (3 * 96 * 96)
            if len(paths) > 1 and paths[1].stat().st_size != count:
                problems.append(f"stl10 {split}: {count} images but {paths[1].stat().st_size} labels")
            checks = [(p, _stl10_md5s()[p.name]) for p in paths]
        if expected is not None and count != expected:
            problems.append(f"{name} {split}: {count} images, published {expected}")
        if full and fixture is None:
            changed = [p.name for p, md5 in checks if downloads.checksum(p, "md5") != md5]
            if changed:
                problems.append(f"{name} {split}: {', '.join(changed)} differ from torchvision's md5")
    return problems


def loadmat_headers(path):
    """[(variable, shape, class)] of a MATLAB file, read from its headers (nothing loaded)."""
    from scipy.io import whosmat

    try:
        return whosmat(str(path))
    except (ValueError, OSError, TypeError) as error:
        raise InputError(f"{path} is not a readable MATLAB file ({error}); delete it and download again") from error


# ----- fixture ------------------------------------------------------------------------------

def _patches(count, size, rng, labels):
    """Class-dependent patterns so that an embedding can carry the label: stripes whose
    frequency and colour follow the class, with noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        k = max(int(label), 0)
        angle = np.pi * k / CLASSES
        wave = np.sin(2 * np.pi * (2 + k) * (np.cos(angle) * xx + np.sin(angle) * yy))
        colour = np.array([0.5 + 0.4 * np.cos(k), 0.5 + 0.4 * np.sin(k), 0.5 - 0.3 * np.cos(2 * k)])
        image = 0.5 + 0.35 * wave[..., None] * colour + rng.normal(0, 0.08, (size, size, 3))
        images[i] = (image.clip(0, 1) * 255).round()
    return images


def write_fixture(root, name, counts=None, seed=0):
    """Tiny SVHN (`*_32x32.mat`) or STL-10 (`stl10_binary/*.bin`) files that torchvision's
    classes load, with learnable class-dependent images."""
    from scipy.io import savemat

    folder = _folder(root, name)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = counts or ({"extra": 96, "train": 80, "test": 40} if name == "svhn"
                        else {"unlabeled": 64, "train": 80, "test": 40})
    if name == "svhn":
        for split, count in counts.items():
            labels = rng.integers(0, CLASSES, count)
            images = _patches(count, 32, rng, labels)                    # (N, 32, 32, 3)
            # SVHN's .mat layout: X (32, 32, 3, N) uint8, y (N, 1) with the digit 0 stored as 10
            savemat(folder / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0),
                                                    "y": np.where(labels == 0, 10, labels)[:, None].astype(np.uint8)})
    elif name == "stl10":
        binary = folder / "stl10_binary"
        binary.mkdir(exist_ok=True)
        for split, count in counts.items():
            labels = rng.integers(0, CLASSES, count)  # unlabeled images get classes too: their patterns vary alike
            images = _patches(count, 96, rng, labels)                    # (N, 96, 96, 3)
            # STL-10's binary layout: column-major (N, 3, 96, 96) uint8; labels 1..10 as uint8
            images.transpose(0, 3, 2, 1).tofile(binary / f"{split}_X.bin")
            if split != "unlabeled":
                (labels + 1).astype(np.uint8).tofile(binary / f"{split}_y.bin")
        (binary / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(CLASSES)) + "\n")
        (binary / "fold_indices.txt").write_text("\n".join(" ".join(map(str, range(i, 80, 10))) for i in range(10)))
    else:
        raise InputError(f"unknown dataset {name!r}; choose svhn or stl10")
    manifest.write(folder, name, [f for f in folder.rglob("*") if f.is_file()], fixture=True, progress=False,
                    extra={"counts": counts})
    return Path(root)
