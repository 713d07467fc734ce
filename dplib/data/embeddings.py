"""SVHN and STL-10 for Benchmark 4, read by torchvision's own dataset classes:

    ROOT/svhn/{extra,train,test}_32x32.mat           (SVHN: extra trains the autoencoder)
    ROOT/stl10/stl10_binary/{unlabeled,train,test}_X.bin, {train,test}_y.bin, ...

SVHN images are padded from 32x32 to 64x64 by reflection (the paper); STL-10 stays 96x96.
torchvision checks every file's md5. The fixtures are tiny files in the same formats whose
checksums cannot match the real ones: a fixture folder holds a FIXTURE_MARKER file, and
`_torchvision_class` (the one place this happens) then skips the md5 check. Real data is
always checked.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import datasets

from ..errors import MissingData

FIXTURE_MARKER = "DPLIB_FIXTURE"
AUTOENCODER_SPLIT = {"svhn": "extra", "stl10": "unlabeled"}
SIZE = {"svhn": 64, "stl10": 96}
CLASSES = 10
_CLASSES = {"svhn": datasets.SVHN, "stl10": datasets.STL10}


def _folder(root, name):
    return Path(root) / name


def _torchvision_class(name, folder):
    """torchvision's class for `name`; for a marked fixture folder, the same class without
    its md5 check (fixture files cannot have the real files' checksums)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown dataset {name!r}; choose svhn or stl10")
    cls = _CLASSES[name]
    if (Path(folder) / FIXTURE_MARKER).is_file():
        return type(f"Fixture{cls.__name__}", (cls,), {"_check_integrity": lambda self: True})
    return cls


def load_split(name, root, split):
    """(images uint8 (N, 3, h, w), labels int64 (N,); -1 where unlabeled) of one split."""
    folder = _folder(root, name)
    cls = _torchvision_class(name, folder)
    try:
        dataset = cls(str(folder), split=split, download=False)
    except RuntimeError as error:
        raise MissingData(f"{name} {split} not found or corrupted under {folder} ({error}); run "
                                f"`dplib data download {name} --root {root}` (or `dplib data fixtures {name} "
                                f"--root {root}` for the tiny test version)") from error
    images = torch.from_numpy(np.ascontiguousarray(dataset.data))
    labels = torch.as_tensor(np.asarray(dataset.labels if dataset.labels is not None else []), dtype=torch.int64)
    if len(labels) != len(images):
        labels = torch.full((len(images),), -1, dtype=torch.int64)
    return images, labels


SVHN_PADDINGS = ("reflect", "tile")


def to_model_input(name, images, padding="reflect"):
    """uint8 (N, 3, h, w) -> float (N, 3, s, s) in [0, 1]; SVHN padded 32 -> 64 by reflection
    (the main paper) or by wrapping around, "tile" (the companion papers: a 2x2 tiling of
    the digit, centred on the original, as the released code's wrap padding made it)."""
    if padding not in SVHN_PADDINGS:
        raise ValueError(f"unknown SVHN padding {padding!r}; choose one of {', '.join(SVHN_PADDINGS)}")
    x = images.float() / 255
    if name == "svhn":
        x = F.pad(x, (16, 16, 16, 16), mode="reflect" if padding == "reflect" else "circular")
    return x


class Images(Dataset):
    """Items (image (3, s, s) in [0, 1], label, index); the index finds cached target features."""

    def __init__(self, name, images, labels, padding="reflect"):
        self.name, self.images, self.labels, self.padding = name, images, labels, padding

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return to_model_input(self.name, self.images[i:i + 1], self.padding)[0], self.labels[i], i


def split_indices(count, seed=0, validation=0.2):
    """A seeded 80/20 split of range(count): (train indices, validation indices)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    cut = count - int(round(validation * count))
    return order[:cut].sort().values, order[cut:].sort().values


# ----- download -----------------------------------------------------------------------------

def download(name, root, mirror=None, md5=None):
    """Download with torchvision (md5-checked) into ROOT/<name>. `mirror` replaces the
    download host (tests use a local server); `md5` overrides torchvision's checksums."""
    folder = _folder(root, name)
    folder.mkdir(parents=True, exist_ok=True)
    cls = _CLASSES[name]
    attributes = {}
    if name == "svhn":
        split_list = {}
        for split, (url, filename, checksum) in cls.split_list.items():
            url = f"{mirror}{filename}" if mirror else url
            split_list[split] = [url, filename, (md5 or {}).get(filename, checksum)]
        attributes["split_list"] = split_list
        splits = ("extra", "train", "test")
    else:
        if mirror:
            attributes["url"] = f"{mirror}{cls.filename}"
        if md5:
            attributes["tgz_md5"] = md5.get(cls.filename, cls.tgz_md5)
            attributes["train_list"] = [[f, md5.get(f, c)] for f, c in cls.train_list]
            attributes["test_list"] = [[f, md5.get(f, c)] for f, c in cls.test_list]
        splits = ("unlabeled",)  # one archive holds every split
    downloader = type(f"Mirrored{cls.__name__}", (cls,), attributes)
    for split in splits:
        try:
            downloader(str(folder), split=split, download=True)
        except (RuntimeError, OSError) as error:
            raise RuntimeError(f"could not download {name} {split} into {folder}: {error}. Offline, put the "
                               "files there by hand (their names are in dplib/data/embeddings.py)") from error
    return folder


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
    if name == "svhn":
        for split, count in (counts or {"extra": 96, "train": 80, "test": 40}).items():
            labels = rng.integers(0, CLASSES, count)
            images = _patches(count, 32, rng, labels)                    # (N, 32, 32, 3)
            # SVHN's .mat layout: X (32, 32, 3, N) uint8, y (N, 1) with the digit 0 stored as 10
            savemat(folder / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0),
                                                    "y": np.where(labels == 0, 10, labels)[:, None].astype(np.uint8)})
    elif name == "stl10":
        binary = folder / "stl10_binary"
        binary.mkdir(exist_ok=True)
        for split, count in (counts or {"unlabeled": 64, "train": 80, "test": 40}).items():
            labels = rng.integers(0, CLASSES, count)  # unlabeled images get classes too: their patterns vary alike
            images = _patches(count, 96, rng, labels)                    # (N, 96, 96, 3)
            # STL-10's binary layout: column-major (N, 3, 96, 96) uint8; labels 1..10 as uint8
            images.transpose(0, 3, 2, 1).tofile(binary / f"{split}_X.bin")
            if split != "unlabeled":
                (labels + 1).astype(np.uint8).tofile(binary / f"{split}_y.bin")
        (binary / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(CLASSES)) + "\n")
        (binary / "fold_indices.txt").write_text("\n".join(" ".join(map(str, range(i, 80, 10))) for i in range(10)))
    else:
        raise ValueError(f"unknown dataset {name!r}; choose svhn or stl10")
    (folder / FIXTURE_MARKER).write_text("tiny stand-in written by dplib; md5 checks are skipped for it\n")
    return Path(root)
