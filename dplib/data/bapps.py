"""BAPPS (Zhang et al. 2018), the human judgements of Benchmark 1, as distributed:

    ROOT/2afc/{val,train}/<subset>/{ref,p0,p1}/*.png  + judge/*.npy   (fraction preferring p1)
    ROOT/jnd/val/<subset>/{p0,p1}/*.png                + same/*.npy    (fraction calling them the same)

Files are paired by sorted name (the names must agree across folders); patches are
resized to 64x64 (they are 64x64 already in the released validation sets).
"""

import tarfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from . import download as downloads
from .files import missing, read_image, resize
from .distortions import distort

TWO_AFC_SUBSETS = ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")
JND_SUBSETS = ("traditional", "cnn")
URL = "https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/"
# (archive, extracted into, folder it provides, optional)
ARCHIVES = (
    ("twoafc_val.tar.gz", "2afc", "2afc/val", False),
    ("jnd.tar.gz", ".", "jnd/val", False),
    ("twoafc_train.tar.gz", "2afc", "2afc/train", True),
)
# The upstream archives publish no checksums: sizes are checked against the server's
# Content-Length. A sha256 value put here (archive name: hex digest) is checked too.
SHA256 = {}


def _missing(root, what):
    return missing("bapps", root, f"BAPPS {what}")


def _files(folder, suffix):
    return sorted(p for p in Path(folder).iterdir() if p.suffix == suffix) if Path(folder).is_dir() else []


def _paired(folder, image_folders, label_folder, limit):
    """Sorted files of every sub-folder, checked to pair up one-to-one by name."""
    columns = {name: _files(folder / name, ".png") for name in image_folders}
    columns[label_folder] = _files(folder / label_folder, ".npy")
    counts = {name: len(files) for name, files in columns.items()}
    if len(set(counts.values())) != 1 or not counts[label_folder]:
        raise ValueError(f"BAPPS folder {folder} has mismatched file counts {counts}; the download may be "
                         "incomplete: delete the folder and download again")
    for row in zip(*columns.values()):
        stems = {p.stem for p in row}
        if len(stems) != 1:
            raise ValueError(f"BAPPS files do not pair up by name in {folder}: {[str(p) for p in row]}")
    if limit:
        columns = {name: files[:limit] for name, files in columns.items()}
    return columns


def _label(path):
    try:
        value = np.load(path)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"cannot read the judgement file {path}: {error}") from error
    if value.size != 1:
        raise ValueError(f"judgement file {path} holds an array of shape {value.shape}; expected one number")
    return float(value.reshape(-1)[0])


def load_patch(path, size=64):
    """A PNG as a (3, size, size) float tensor in [0, 1]."""
    patch = read_image(path, "RGB")
    return patch if patch.shape[1:] == (size, size) else resize(patch, (size, size))


class TwoAFCDataset(Dataset):
    """Triplets of one 2AFC subset: dict(ref, p0, p1: (3, 64, 64), judge: float)."""

    def __init__(self, root, subset, split="val", size=64, limit=None):
        root = Path(root)
        folder = root / "2afc" / split / subset
        if not folder.is_dir():
            raise _missing(root, f"2afc/{split}/{subset}")
        self.files = _paired(folder, ("ref", "p0", "p1"), "judge", limit)
        self.judge = np.array([_label(p) for p in self.files["judge"]])
        self.size = size

    def __len__(self):
        return len(self.judge)

    def __getitem__(self, i):
        item = {name: load_patch(self.files[name][i], self.size) for name in ("ref", "p0", "p1")}
        item["judge"] = self.judge[i]
        return item


class JNDDataset(Dataset):
    """Pairs of one JND subset: dict(p0, p1: (3, 64, 64), same: float)."""

    def __init__(self, root, subset, size=64, limit=None):
        root = Path(root)
        folder = root / "jnd" / "val" / subset
        if not folder.is_dir():
            raise _missing(root, f"jnd/val/{subset}")
        self.files = _paired(folder, ("p0", "p1"), "same", limit)
        self.same = np.array([_label(p) for p in self.files["same"]])
        self.size = size

    def __len__(self):
        return len(self.same)

    def __getitem__(self, i):
        item = {name: load_patch(self.files[name][i], self.size) for name in ("p0", "p1")}
        item["same"] = self.same[i]
        return item


def download(root, include_train=False, base_url=URL, sha256=None):
    """Download and extract BAPPS into `root` (2AFC val and JND; train with include_train).

    Resumes partial downloads, verifies sizes (and sha256 where pinned), extracts safely,
    and skips parts already in place. Returns root.
    """
    root = Path(root)
    sha256 = SHA256 if sha256 is None else sha256
    for archive, into, provides, optional in ARCHIVES:
        if optional and not include_train:
            continue
        marker = root / ".downloads" / f"{archive}.complete"
        if marker.is_file() and (root / provides).is_dir():
            continue
        path = downloads.fetch(base_url + archive, root / ".downloads" / archive, sha256=sha256.get(archive))
        downloads.extract(path, root / into)
        if not (root / provides).is_dir():
            raise downloads.DownloadError(f"{archive} did not contain {provides}; is {base_url} the BAPPS mirror?")
        marker.write_text("ok\n")
        path.unlink()
    return root


# ----- fixture ------------------------------------------------------------------------------

# Distortions per 2AFC subset for the fixture: stand-ins for the real algorithms' artefacts.
FIXTURE_DISTORTIONS = {
    "traditional": ("blur", "noise", "jpeg"), "cnn": ("contrast", "noise"), "superres": ("blur", "jpeg"),
    "deblur": ("blur", "contrast"), "color": ("color", "contrast"), "frameinterp": ("blur", "noise"),
}


def _photographs():
    from skimage import data

    images = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry(),
              np.repeat(data.camera()[..., None], 3, axis=2)]
    return [torch.from_numpy(np.ascontiguousarray(i[..., :3])).permute(2, 0, 1).float() / 255 for i in images]


def _random_patches(count, size, generator):
    photographs = _photographs()
    patches = []
    for i in range(count):
        photo = photographs[i % len(photographs)]
        scale = 0.25 + 0.5 * torch.rand(1, generator=generator).item()
        small = F.interpolate(photo[None], scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)[0]
        top = torch.randint(0, small.shape[1] - size + 1, (1,), generator=generator).item()
        left = torch.randint(0, small.shape[2] - size + 1, (1,), generator=generator).item()
        patches.append(small[:, top:top + size, left:left + size].clamp(0, 1))
    return patches


def _save_png(tensor, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (tensor.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).save(path)


def _save_label(value, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.array([value], dtype=np.float32))


def write_fixture(root, patches_per_subset=12, seed=0):
    """A tiny BAPPS in the real layout: patches of scikit-image's photographs with real
    distortions; judgements follow the distortion strengths (people prefer the weaker)."""
    root = Path(root)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for subset_index, subset in enumerate(TWO_AFC_SUBSETS):
        folder = root / "2afc" / "val" / subset
        kinds = FIXTURE_DISTORTIONS[subset]
        for i, ref in enumerate(_random_patches(patches_per_subset, 64, generator)):
            s0, s1 = rng.uniform(0.05, 1.0, size=2)
            k0, k1 = kinds[i % len(kinds)], kinds[(i + 1) % len(kinds)]
            p0 = distort(ref[None], k0, s0, seed=seed + i)[0]
            p1 = distort(ref[None], k1, s1, seed=seed + i + 1)[0]
            judge = float(np.clip(1 / (1 + np.exp(-6 * (s0 - s1))) + rng.normal(0, 0.05), 0, 1))
            name = f"{i:06d}"
            for part, image in (("ref", ref), ("p0", p0), ("p1", p1)):
                _save_png(image, folder / part / f"{name}.png")
            _save_label(judge, folder / "judge" / f"{name}.npy")
    for subset in JND_SUBSETS:
        folder = root / "jnd" / "val" / subset
        for i, ref in enumerate(_random_patches(patches_per_subset, 64, generator)):
            strength = rng.uniform(0.0, 1.0)
            kind = ("blur", "noise", "jpeg", "color")[i % 4]
            p1 = distort(ref[None], kind, strength, seed=seed + i)[0]
            same = float(np.clip(1 - 1.2 * strength + rng.normal(0, 0.05), 0, 1))
            name = f"{i:06d}"
            _save_png(ref, folder / "p0" / f"{name}.png")
            _save_png(p1, folder / "p1" / f"{name}.png")
            _save_label(same, folder / "same" / f"{name}.npy")
    return root


def write_fixture_archives(fixture_root, out_dir):
    """The fixture packed like the upstream archives (twoafc_val.tar.gz holds val/,
    jnd.tar.gz holds jnd/), for testing `download` against a local server."""
    fixture_root, out_dir = Path(fixture_root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out_dir / "twoafc_val.tar.gz", "w:gz") as t:
        t.add(fixture_root / "2afc" / "val", arcname="val")
    with tarfile.open(out_dir / "jnd.tar.gz", "w:gz") as t:
        t.add(fixture_root / "jnd", arcname="jnd")
    return out_dir
