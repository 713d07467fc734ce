"""BAPPS (Zhang et al. 2018), the human judgements of Benchmark 1, as distributed:

    ROOT/2afc/{val,train}/<subset>/{ref,p0,p1}/*.png  + judge/*.npy   (fraction preferring p1)
    ROOT/jnd/val/<subset>/{p0,p1}/*.png                + same/*.npy    (fraction calling them the same)

Files are paired by sorted name (the names must agree across folders); patches are
resized to 64x64 (they are 64x64 already in the released validation sets).
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from . import download as downloads, manifest
from .files import image_problem, missing, read_image, resize
from .distortions import distort
from ..errors import InputError

TWO_AFC_SUBSETS = ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")
JND_SUBSETS = ("traditional", "cnn")
TRAIN_SUBSETS = ("traditional", "cnn", "mix")  # 2AFC train (calibrating a metric, not Benchmark 1)
# The BAPPS authors' host and layout (richzhang/PerceptualSimilarity, scripts/download_dataset.sh:
# `tar -xf twoafc_val.tar.gz -C ./dataset/2afc`, so that archive holds val/<subset>/...; the
# JND archive holds jnd/val/<subset>/...): archive -> (folder it is extracted into, part it gives)
URL = "https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/"
ARCHIVES = {"twoafc_val.tar.gz": ("2afc", "2afc/val"), "jnd.tar.gz": (".", "jnd/val"),
            "twoafc_train.tar.gz": ("2afc", "2afc/train")}
# sha256 of the archives, pinned by a third party, not by the BAPPS authors (who publish none):
# sileod/tasksource, scripts/repackage_dataset/regions.py. jnd.tar.gz has none anywhere: its
# sha256 goes into the manifest a download writes.
SHA256 = {"twoafc_val.tar.gz": "41486671b06de923e7ba277c4797d4d9d86d609863ba35ecdb576133f8b9d859",
          "twoafc_train.tar.gz": "b4f5c772c7cd88ac44bcb4ff0741745d434c05f0094f2bfb262ddcd0055bf393"}
# Items per subset as the BAPPS README publishes them, in thousands rounded to 0.1k (the exact
# counts are published nowhere): {part: {subset: (items, tolerance)}}; verify checks that a
# subset's count lies within the tolerance of its number (50: what the rounding allows).
COUNTS = {part: {subset: (round(k * 1000), 50) for subset, k in subsets.items()} for part, subsets in {
    "2afc/val": {"traditional": 4.7, "cnn": 4.7, "superres": 10.9, "deblur": 9.4, "color": 4.7, "frameinterp": 1.9},
    "jnd/val": {"traditional": 4.8, "cnn": 4.8},
    "2afc/train": {"traditional": 56.6, "cnn": 38.1, "mix": 56.6}}.items()}
FOLDERS = {"2afc": (("ref", "p0", "p1"), "judge"), "jnd": (("p0", "p1"), "same")}  # image folders, label folder
PATCH = 64  # the patches' side ("64 x 64 image patches": the released validation sets are this size)


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
        raise InputError(f"BAPPS folder {folder} has mismatched file counts {counts}; the download may be "
                         "incomplete: delete the folder and download again")
    for row in zip(*columns.values()):
        stems = {p.stem for p in row}
        if len(stems) != 1:
            raise InputError(f"BAPPS files do not pair up by name in {folder}: {[str(p) for p in row]}")
    if limit:
        columns = {name: files[:limit] for name, files in columns.items()}
    return columns


def _label(path):
    try:
        value = np.load(path)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"cannot read the judgement file {path}: {error}") from error
    if value.size != 1:
        raise InputError(f"judgement file {path} holds an array of shape {value.shape}; expected one number")
    return float(value.reshape(-1)[0])


def load_patch(path, size=PATCH):
    """A PNG as a (3, size, size) float tensor in [0, 1]."""
    patch = read_image(path, "RGB")
    return patch if patch.shape[1:] == (size, size) else resize(patch, (size, size))


class TwoAFCDataset(Dataset):
    """Triplets of one 2AFC subset: dict(ref, p0, p1: (3, 64, 64), judge: float)."""

    def __init__(self, root, subset, split="val", size=PATCH, limit=None):
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

    def __init__(self, root, subset, size=PATCH, limit=None):
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


def needs(two_afc_val=(), jnd_val=(), two_afc_train=()):
    """What a run reads of BAPPS: {part: subsets}."""
    parts = {"2afc/val": two_afc_val, "jnd/val": jnd_val, "2afc/train": two_afc_train}
    return {part: set(subsets) for part, subsets in parts.items() if subsets}


def download(root, needs, base_url=None, sha256=None, progress=True):
    """Download and extract the archives holding the parts `needs` lists (twoafc_val.tar.gz for
    2afc/val, jnd.tar.gz for jnd/val, twoafc_train.tar.gz for 2afc/train), each checked against
    its pinned sha256 where there is one, extracted safely, removed, and its files recorded in
    the manifest; then verify. Parts already in place are skipped. Returns root."""
    root, base_url = Path(root), base_url or URL
    sha256 = SHA256 if sha256 is None else sha256
    for archive, (into, part) in ARCHIVES.items():
        if part not in needs or not verify(root, {part: needs[part]}):
            continue  # not needed, or already complete
        path = downloads.fetch(base_url + archive, root / ".downloads" / archive, sha256=sha256.get(archive))
        archive_entry = {"size": path.stat().st_size, "sha256": sha256.get(archive) or downloads.sha256sum(path)}
        downloads.extract(path, root / into)
        if not (root / part).is_dir():
            raise downloads.DownloadError(f"{archive} did not contain {part}; is {base_url} the BAPPS mirror?")
        path.unlink()
        manifest.write(root, "bapps", [f for f in (root / part).rglob("*") if f.is_file()], {archive: archive_entry},
                        progress=progress)
    _remove_empty(root / ".downloads")
    downloads.raise_for(verify(root, needs, full=True), "bapps", root)
    return root


def _remove_empty(folder):
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def verify(root, needs, full=False):
    """Problems, one line each, of the subsets `needs` lists: a subset missing, a count that
    does not round to the published one (a fixture's own counts for a fixture), folders that
    do not pair up by name, and with full=True every patch decoded (64 x 64 in the val sets),
    every judgement read, and every file checked against the manifest. [] when all is well."""
    root = Path(root)
    fixture = manifest.read(root) if manifest.is_fixture(root) else None
    problems, whole = [], []
    for part, subsets in needs.items():
        for subset in sorted(subsets):
            expected = (fixture["counts"][f"{part}/{subset}"], 0, "the fixture has") if fixture else \
                (*COUNTS[part][subset], "published")
            found = _subset_problems(root / part / subset, FOLDERS[part.split("/")[0]], expected, full,
                                     (PATCH, PATCH) if part.endswith("val") else None)
            problems += [f"{part}/{subset}: {problem}" for problem in found]
            whole += [] if found else [f"{part}/{subset}/"]
    return problems + manifest.check(root, lambda path: path.startswith(tuple(whole)), checksums=full)


def _subset_problems(folder, folders, expected, full, size):
    """What is wrong with one subset's folder: missing, folders that do not pair up, a count
    off the expected (items, tolerance, whose number), and with full=True unreadable files."""
    if not folder.is_dir():
        return ["missing"]
    images, label = folders
    try:
        columns = _paired(folder, images, label, None)
    except ValueError as error:
        return [str(error).split(";")[0]]
    count, (items, tolerance, source) = len(columns[label]), expected
    problems = []
    if abs(count - items) > tolerance:
        problems.append(f"{count} items, {source} {items}" + (f" (+- {tolerance}: rounded to 0.1k)" if tolerance else ""))
    if full:
        bad = [problem for name in images for path in columns[name] if (problem := image_problem(path, size))]
        bad += [f"{p.name}: {e}" for p in columns[label] if (e := _label_problem(p))]
        if bad:
            problems.append(f"{len(bad)} unreadable files (e.g. {bad[0]})")
    return problems


def _label_problem(path):
    try:
        _label(path)
    except ValueError as error:
        return str(error)
    return None


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


def _write_triplets(folder, kinds, count, generator, rng, seed):
    for i, ref in enumerate(_random_patches(count, 64, generator)):
        s0, s1 = rng.uniform(0.05, 1.0, size=2)
        k0, k1 = kinds[i % len(kinds)], kinds[(i + 1) % len(kinds)]
        p0 = distort(ref[None], k0, s0, seed=seed + i)[0]
        p1 = distort(ref[None], k1, s1, seed=seed + i + 1)[0]
        judge = float(np.clip(1 / (1 + np.exp(-6 * (s0 - s1))) + rng.normal(0, 0.05), 0, 1))
        name = f"{i:06d}"
        for part, image in (("ref", ref), ("p0", p0), ("p1", p1)):
            _save_png(image, folder / part / f"{name}.png")
        _save_label(judge, folder / "judge" / f"{name}.npy")


def write_fixture(root, patches_per_subset=12, seed=0):
    """A tiny BAPPS in the real layout: patches of scikit-image's photographs with real
    distortions; judgements follow the distortion strengths (people prefer the weaker)."""
    root = Path(root)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for subset in TWO_AFC_SUBSETS:
        _write_triplets(root / "2afc" / "val" / subset, FIXTURE_DISTORTIONS[subset], patches_per_subset, generator,
                        rng, seed)
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
    # The 2AFC training split (calibrating a metric, dplib.calibration), written last so that
    # the val and JND patches stay what they were; "mix" mixes the two kinds, as in BAPPS.
    mix = FIXTURE_DISTORTIONS["traditional"] + FIXTURE_DISTORTIONS["cnn"][:1]
    for subset in TRAIN_SUBSETS:
        _write_triplets(root / "2afc" / "train" / subset, FIXTURE_DISTORTIONS.get(subset, mix), patches_per_subset,
                        generator, rng, seed)
    counts = {f"2afc/val/{s}": patches_per_subset for s in TWO_AFC_SUBSETS}
    counts.update({f"jnd/val/{s}": patches_per_subset for s in JND_SUBSETS})
    counts.update({f"2afc/train/{s}": patches_per_subset for s in TRAIN_SUBSETS})
    manifest.write(root, "bapps", [f for f in root.rglob("*") if f.is_file()], fixture=True, progress=False,
                    extra={"counts": counts})
    return root
