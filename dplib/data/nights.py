"""NIGHTS (Fu et al. 2023, DreamSim): about 20K synthetic triplets, a reference and two variations,
with the human 2AFC vote of each, scored like BAPPS's 2AFC. As its authors distribute it
(ssundaram21/dreamsim, dataset/download_dataset.sh: `wget https://data.csail.mit.edu/nights/
nights.zip; unzip nights.zip`; dataset/README.md: the layout; 58 GB unzipped):

    ROOT/nights/data.csv                    one row per triplet (columns below)
    ROOT/nights/ref/000/002.png             the reference
    ROOT/nights/distort/000/002_0.png, _1.png   the left and right variations

data.csv is read by column name: id, left_vote, right_vote, votes, ref_path, left_path,
right_path, split, is_imagenet (and prompt). DreamSim's TwoAFCDataset keeps the rows with
`votes >= 6` ("triplets with less than 6 unanimous votes" filtered out: the 20,019 unanimous
ones), splits by `split` (train, val, test), and takes right_vote as the share of people who
found the right image closer (TIGER-AI-Lab/UniIR's NIGHTS preprocessor reads it as "0" or "1");
its evaluation/score.py scores `(d0 < d1) * (1 - target) + (d1 < d0) * target + (d0 == d1) * 0.5`,
BAPPS's 2AFC. Images are resized to 224 x 224, bicubic, as DreamSim's preprocessing does for its
evaluation (load_size 224).
"""

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from . import download as downloads, manifest
from .files import image_problem, missing, open_image, to_tensor
from ..errors import InputError

URL = "https://data.csail.mit.edu/nights/nights.zip"
ARCHIVE = "nights.zip"  # no checksum is published (dataset/README.md); the manifest records the download's
TRIPLETS = 20_019       # "a dataset of 20,019 image triplets" (dataset/README.md), after the votes filter
MIN_VOTES = 6           # DreamSim's filter: unanimous triplets
SPLITS = ("train", "val", "test")
SIZE = 224              # DreamSim's load_size
COLUMNS = ("id", "left_vote", "right_vote", "votes", "ref_path", "left_path", "right_path", "split", "is_imagenet")


def _missing(root, what):
    return missing("nights", root, f"NIGHTS {what}")


def rows(root):
    """The unanimous triplets of data.csv, every column as read."""
    table = Path(root) / "nights" / "data.csv"
    if not table.is_file():
        raise _missing(root, "nights/data.csv")
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        absent = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if absent:
            raise InputError(f"{table} lacks the columns {absent}: is it NIGHTS's data.csv?")
        return [row for row in reader if float(row["votes"]) >= MIN_VOTES]


def judge(row):
    """The share of people who found the right image (p1) closer: right_vote, read as DreamSim
    reads it (a share in [0, 1]; a count of votes is turned into one)."""
    right = float(row["right_vote"])
    return right if right <= 1 else right / float(row["votes"])


def load(path, size=SIZE):
    """(3, size, size) in [0, 1]: resized bicubic from the PIL image, as DreamSim's Resize."""
    image = open_image(path)
    return to_tensor(image if image.size == (size, size) else image.resize((size, size), Image.BICUBIC))


class NightsDataset(Dataset):
    """One split's triplets, as BAPPS's 2AFC: dict(ref, p0 (left), p1 (right): (3, 224, 224), judge)."""

    def __init__(self, root, split="test", size=SIZE, limit=None):
        if split not in SPLITS:
            raise InputError(f"unknown NIGHTS split {split!r}; choose one of {', '.join(SPLITS)}")
        self.base, self.size = Path(root) / "nights", size
        self.rows = [r for r in rows(root) if r["split"] == split][:limit or None]
        if not self.rows:
            raise _missing(root, f"{split} triplets")
        self.judge = np.array([judge(r) for r in self.rows])

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        row = self.rows[i]
        item = {name: load(self.base / row[column], self.size)
                for name, column in (("ref", "ref_path"), ("p0", "left_path"), ("p1", "right_path"))}
        item["judge"] = self.judge[i]
        return item


def needs(splits=("test",)):
    """What a run reads of NIGHTS: {"splits": the splits it scores}."""
    return {"splits": set(splits)}


def download(root, needs, progress=True):
    """nights.zip from the authors' host, extracted safely (nights/...) and removed, every file in
    the manifest; then verify."""
    root = Path(root)
    if not verify(root, needs):
        return root
    path = downloads.fetch(URL, root / ".downloads" / ARCHIVE, progress=progress)
    archive_entry = {"size": path.stat().st_size, "sha256": downloads.sha256sum(path)}
    downloads.extract(path, root)
    path.unlink()
    if (root / ".downloads").is_dir() and not any((root / ".downloads").iterdir()):
        (root / ".downloads").rmdir()
    manifest.write(root, "nights", [f for f in root.rglob("*") if f.is_file()], {ARCHIVE: archive_entry},
                    progress=progress)
    downloads.raise_for(verify(root, needs, full=True), "nights", root)
    return root


def verify(root, needs, full=False):
    """Problems, one line each: data.csv missing or without its columns, the unanimous triplets
    not the published 20,019 (a fixture's own count for a fixture), a split the runs read empty,
    an image it lists absent, and with full=True every image decoded and the manifest checked."""
    root = Path(root)
    fixture = manifest.read(root) if manifest.is_fixture(root) else None
    try:
        found = rows(root)
    except (InputError, OSError) as error:
        return [str(error).split(";")[0]]
    expected = fixture["counts"]["triplets"] if fixture else TRIPLETS
    problems = [] if len(found) == expected else [f"{len(found)} unanimous triplets, {'the fixture has' if fixture else 'published'} {expected}"]
    for split in sorted(needs.get("splits", ())):
        if not any(r["split"] == split for r in found):
            problems.append(f"no {split} triplets")
    base = root / "nights"
    paths = sorted({base / r[c] for r in found for c in ("ref_path", "left_path", "right_path")})
    absent = [p for p in paths if not p.is_file()]
    if absent:
        problems.append(f"{len(absent)} images listed but absent (e.g. {absent[0]})")
    elif full:
        bad = [problem for path in paths if (problem := image_problem(path))]
        if bad:
            problems.append(f"{len(bad)} unreadable images (e.g. {bad[0]})")
    return problems + manifest.check(root, checksums=full)


def write_fixture(root, per_split=4, size=96, seed=0):
    """A tiny NIGHTS in its real layout: folders of 1000 ids, data.csv with its columns; variations
    are photographs distorted twice, the vote for the weaker one."""
    from .distortions import distort
    from .iqa import _pictures, _save

    root, rng = Path(root), np.random.default_rng(seed)
    base = root / "nights"
    lines = [",".join(COLUMNS + ("prompt",))]
    count = 0
    for s, split in enumerate(SPLITS):
        for i, picture in enumerate(_pictures(per_split, (size, size), seed + s)):
            number = s * per_split + i
            folder, stem = f"{number // 1000:03d}", f"{number % 1000:03d}"
            strengths = rng.uniform(0.1, 1.0, size=2)
            kinds = ("blur", "noise", "jpeg", "contrast")
            _save(picture, base / "ref" / folder / f"{stem}.png")
            for side in (0, 1):
                image = distort(picture[None], kinds[(number + side) % 4], strengths[side], seed=seed + number)[0]
                _save(image, base / "distort" / folder / f"{stem}_{side}.png")
            right = int(strengths[1] < strengths[0])  # people pick the weaker variation
            votes = 6 if i < per_split - 1 else 5     # the last of each split is not unanimous: filtered out
            lines.append(f"{number},{1 - right},{right},{votes},ref/{folder}/{stem}.png,distort/{folder}/{stem}_0.png,"
                         f"distort/{folder}/{stem}_1.png,{split},{str(bool(i % 2))},an image of a picture")
            count += votes >= MIN_VOTES
    (base / "data.csv").write_text("\n".join(lines) + "\n")
    manifest.write(root, "nights", [f for f in root.rglob("*") if f.is_file()], fixture=True, progress=False,
                    extra={"counts": {"triplets": count}})
    return root
