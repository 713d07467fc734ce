"""Human opinion scores of whole images against their references (full-reference image quality):
KADID-10k, TID2013 and PIPAL, as their hosts distribute them. Benchmark 1 beyond BAPPS scores a
loss network's distance against these scores (dplib.metrics: SRCC, KRCC, PLCC).

    root/kadid10k/dmos.csv, root/kadid10k/images/{I01.png, I01_01_01.png, ...}        KADID-10k
    root/{reference_images,distorted_images}/*.bmp, root/mos_with_names.txt          TID2013
    root/PIPAL/{Train_Ref/A0001.bmp, Dist_Imgs/A0001_00_00.bmp}, root/meta_info_PIPALDataset.csv   PIPAL

Every image is fed whole at its own size, as pyiqa benchmarks full-reference metrics ("Full
image single input": its docs/benchmark.rst; its default dataset configs apply no resize).
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import download as downloads, manifest
from .distortions import distort
from .files import image_problem, missing, read_image
from ..errors import InputError


@dataclass(frozen=True)
class Source:
    """One dataset as its host publishes it."""

    name: str
    title: str
    url: str                  # the archive
    archive: str
    sha256: str = None        # published checksums of the archive, where anyone publishes one
    md5: str = None
    size: int = None          # bytes of the archive, where published
    labels_url: str = None    # a label file fetched beside the archive (PIPAL's, from pyiqa's metainfo)
    references: int = 0       # published counts
    images: int = 0
    image_size: tuple = None  # (width, height) of every image, where the dataset's paper says one
    score: str = ""           # what the opinion score is; higher is better in all three


SOURCES = {
    # KADID-10k (Lin, Hosu, Saupe 2019): 81 references x 25 distortions x 5 levels, 512 x 384 PNG.
    # The host's archive (database.mmsp-kn.de/kadid-10k-database.html, its direct link as piq's
    # tests/results_benchmark.py gives it) holds kadid10k/dmos.csv ("dist_img,ref_img,dmos,var";
    # the first row "I01_01_01.png,I01.png,4.57,0.496", pyiqa's scripts/process_kadid10k.py reads
    # these four columns) and kadid10k/images/ with references and distorted images together (piq's
    # KADID10k reads root/"images"). Its "dmos" is higher for a better image (1 to 5: pyiqa's
    # mos_range [1, 5], lower_better false). Nobody publishes the zip's checksum.
    "kadid10k": Source("kadid10k", "KADID-10k", "https://datasets.vqa.mmsp-kn.de/archives/kadid10k.zip",
                       "kadid10k.zip", references=81, images=10_125, image_size=(512, 384),
                       score="DMOS, 1 to 5, higher is better"),
    # TID2013 (Ponomarenko et al. 2015): 25 references x 24 distortions x 5 levels, 512 x 384 BMP,
    # as a RAR archive (ponomarenko.info/tid2013.htm) with no top-level folder: reference_images/,
    # distorted_images/, mos_with_names.txt ("5.51429 I01_01_1.bmp" per line; fraunhoferhhi/
    # CuriouslyEffectiveIQE's format_datasets.py reads these three at the extraction folder). Names
    # mix cases on disk (I01.BMP ... I24.BMP but i25.bmp; i01_01_2.bmp but I01_01_1.bmp and
    # I01_11_1.BMP: pyiqa's scripts/process_tid.py and its meta_info CSV), so they are matched
    # without case. MOS, higher is better (0 to 9). md5 of the archive: google-deepmind/dm_nevis,
    # dm_nevis/datasets_storage/handlers/tid.py.
    "tid2013": Source("tid2013", "TID2013", "https://www.ponomarenko.info/tid2013/tid2013.rar", "tid2013.rar",
                      md5="2c42bec2407adc49cf4d7858daf8f99b", references=25, images=3_000, image_size=(512, 384),
                      score="MOS, 0 to 9, higher is better"),
    # PIPAL (Gu et al. 2020): the public labels are the NTIRE training part's, 200 references x 116
    # distortions = 23,200 images, 288 x 288 BMP, Elo scores (higher is better; the maintainers in
    # HaomingCai/PIPAL-dataset#7: "MOS score of PIPAL-Train (200 ref x 116 distortions)"). Its
    # authors host it on Google Drive folders, which no script can fetch, so dplib fetches the
    # IQA-PyTorch (pyiqa) mirror: pipal.tar (sha256 and size from the Hugging Face LFS pointer,
    # chaofengc/IQA-PyTorch-Datasets) extracted to PIPAL/Train_Ref and PIPAL/Dist_Imgs (pyiqa's
    # default_dataset_configs.yml), and pyiqa's label table meta_info_PIPALDataset.csv
    # ("hq_name,dist_name,elo_score", from the authors' Train_Label/*.txt by pyiqa's
    # scripts/process_pipal.py; a later version adds an official_split column). Only the training
    # part is scored: the validation and test labels were never published.
    "pipal": Source("pipal", "PIPAL", "https://huggingface.co/datasets/chaofengc/IQA-PyTorch-Datasets/resolve/main/"
                    "pipal.tar", "pipal.tar",
                    sha256="6bcb713ba0f9ad9ff6c11fc4c680ec88e633a674d16dc9d0700786d24b40f6b4", size=5_843_353_600,
                    labels_url="https://huggingface.co/datasets/chaofengc/IQA-PyTorch-Datasets-metainfo/resolve/main/"
                               "meta_info_PIPALDataset.csv",
                    references=200, images=23_200, image_size=(288, 288), score="Elo, higher is better"),
}
NAMES = tuple(SOURCES)


def _missing(name, root, what):
    return missing(name, root, f"{SOURCES[name].title} {what}")


def _by_lower_name(folder):
    """{lower-case file name: path} of a folder: TID2013's names mix cases on disk."""
    return {p.name.lower(): p for p in Path(folder).iterdir() if p.is_file()} if Path(folder).is_dir() else {}


# ----- the label tables: (reference path, distorted path, score) per image ---------------------

def kadid10k_rows(root):
    base = Path(root) / "kadid10k"
    table = base / "dmos.csv"
    if not table.is_file():
        raise _missing("kadid10k", root, "kadid10k/dmos.csv")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"dist_img", "ref_img", "dmos"} <= set(rows[0]):
        raise InputError(f"{table} lacks the columns dist_img, ref_img, dmos: is it KADID-10k's dmos.csv?")
    images = base / "images"
    return [(images / r["ref_img"], images / r["dist_img"], float(r["dmos"])) for r in rows]


def tid2013_rows(root):
    root = Path(root)
    table = root / "mos_with_names.txt"
    if not table.is_file():
        raise _missing("tid2013", root, "mos_with_names.txt")
    references, distorted = _by_lower_name(root / "reference_images"), _by_lower_name(root / "distorted_images")
    rows = []
    for number, line in enumerate(table.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{table}, line {number}: {line!r} is not 'MOS NAME'")
        score, name = float(parts[0]), parts[1]
        reference = f"i{name[1:3]}.bmp"  # iXX_TT_L.bmp belongs to IXX.BMP
        rows.append((references.get(reference, root / "reference_images" / reference.upper()),
                     distorted.get(name.lower(), root / "distorted_images" / name), score))
    return rows


def pipal_rows(root):
    root = Path(root)
    table = root / "meta_info_PIPALDataset.csv"
    if not table.is_file():
        raise _missing("pipal", root, "meta_info_PIPALDataset.csv")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    reference_column = next((c for c in ("hq_name", "ref_name") if rows and c in rows[0]), None)
    score_column = next((c for c in ("elo_score", "mos") if rows and c in rows[0]), None)
    if reference_column is None or score_column is None or "dist_name" not in rows[0]:
        raise InputError(f"{table} lacks hq_name (or ref_name), dist_name and elo_score (or mos): is it pyiqa's "
                         "PIPAL label table?")
    if "official_split" in rows[0]:  # the table's later version: the public labels are the training part's
        rows = [r for r in rows if r["official_split"] in ("train", "training")]
    base = root / "PIPAL"
    return [(base / "Train_Ref" / r[reference_column], base / "Dist_Imgs" / r["dist_name"], float(r[score_column]))
            for r in rows]


ROWS = {"kadid10k": kadid10k_rows, "tid2013": tid2013_rows, "pipal": pipal_rows}


class OpinionDataset(Dataset):
    """One dataset's images with their references: dict(ref, dist: (3, H, W), score: float).
    `limit`: the first N distorted images (a smoke run)."""

    def __init__(self, name, root, limit=None):
        if name not in ROWS:
            raise InputError(f"unknown opinion-score dataset {name!r}; choose one of {', '.join(NAMES)}")
        self.name, self.rows = name, ROWS[name](root)[:limit or None]
        absent = [str(p) for row in self.rows for p in row[:2] if not p.is_file()]
        if absent:
            raise _missing(name, root, f"images ({len(absent)} listed but absent, e.g. {absent[0]})")
        self.score = np.array([s for _, _, s in self.rows])

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        reference, distorted, score = self.rows[i]
        return {"ref": read_image(reference), "dist": read_image(distorted), "score": score}


# ----- download and verification ----------------------------------------------------------------

def needs(name):
    """What a run reads of one of these datasets: all of it (scored whole)."""
    return {"images": {name}}


def download(root, needs, name, progress=True):
    """The archive from its host (checksums checked where published), extracted safely and
    removed, the label table beside it (PIPAL), every file in the manifest; then verify."""
    root, source = Path(root), SOURCES[name]
    if not verify(root, needs, name):
        return root
    path = downloads.fetch(source.url, root / ".downloads" / source.archive, sha256=source.sha256, md5=source.md5,
                           size=source.size, progress=progress)
    archive_entry = {"size": path.stat().st_size, "sha256": source.sha256 or downloads.sha256sum(path)}
    downloads.extract(path, root)
    path.unlink()
    archives = {source.archive: archive_entry}
    if source.labels_url:
        labels = downloads.fetch(source.labels_url, root / Path(source.labels_url).name, progress=progress)
        archives[labels.name] = {"size": labels.stat().st_size, "sha256": downloads.sha256sum(labels)}
    (root / ".downloads").rmdir() if (root / ".downloads").is_dir() and not any((root / ".downloads").iterdir()) \
        else None
    manifest.write(root, name, [f for f in root.rglob("*") if f.is_file()], archives, progress=progress)
    downloads.raise_for(verify(root, needs, name, full=True), name, root)
    return root


def verify(root, needs, name, full=False):
    """Problems, one line each: the label table missing or unreadable, a count off the published
    one (a fixture's own for a fixture), an image it lists absent, and with full=True every image
    decoded at the published size and every file checked against the manifest."""
    root, source = Path(root), SOURCES[name]
    fixture = manifest.read(root) if manifest.is_fixture(root) else None
    try:
        rows = ROWS[name](root)
    except (InputError, OSError) as error:
        return [str(error).split(";")[0]]
    expected = (fixture["counts"]["references"], fixture["counts"]["images"], "the fixture has") if fixture else \
        (source.references, source.images, "published")
    references = {r for r, _, _ in rows}
    problems = []
    if (len(references), len(rows)) != expected[:2]:
        problems.append(f"{len(references)} references and {len(rows)} images, {expected[2]} {expected[0]} and "
                        f"{expected[1]}")
    absent = sorted({str(p) for row in rows for p in row[:2] if not p.is_file()})
    if absent:
        problems.append(f"{len(absent)} images listed but absent (e.g. {absent[0]})")
    elif full:
        size = tuple(fixture["image_size"]) if fixture else source.image_size
        bad = [problem for path in sorted({p for row in rows for p in row[:2]}) if (problem := image_problem(path, size))]
        if bad:
            problems.append(f"{len(bad)} unreadable images (e.g. {bad[0]})")
    return problems + manifest.check(root, checksums=full)


# ----- fixtures in the real layouts ----------------------------------------------------------------

KINDS = ("blur", "noise", "jpeg", "contrast", "color")


def _pictures(count, size, seed):
    """`count` reference pictures of (width, height) `size`: crops of scikit-image's photographs."""
    from .bapps import _photographs

    generator = torch.Generator().manual_seed(seed)
    pictures = []
    for i in range(count):
        photo = _photographs()[i % 6]
        scale = max(size[1] / photo.shape[1], size[0] / photo.shape[2]) * (1.05 + 0.3 * torch.rand(
            1, generator=generator).item())
        small = torch.nn.functional.interpolate(photo[None], scale_factor=scale, mode="bilinear", antialias=True,
                                                align_corners=False)[0]
        top = torch.randint(0, small.shape[1] - size[1] + 1, (1,), generator=generator).item()
        left = torch.randint(0, small.shape[2] - size[0] + 1, (1,), generator=generator).item()
        pictures.append(small[:, top:top + size[1], left:left + size[0]].clamp(0, 1))
    return pictures


def distorted_set(references, kinds, levels, seed):
    """[(reference index, kind index, level, image, score)]: each reference distorted by each kind
    at each level; the score falls with the level (people score a stronger distortion lower), with
    noise, on a 1-5 scale."""
    rng = np.random.default_rng(seed)
    out = []
    for r, reference in enumerate(references):
        for k, kind in enumerate(kinds):
            for level in range(1, levels + 1):
                strength = level / levels * rng.uniform(0.7, 1.0)
                image = distort(reference[None], kind, strength, seed=seed + 100 * r + 10 * k + level)[0]
                out.append((r, k, level, image, float(np.clip(5 - 4 * strength + rng.normal(0, 0.2), 1, 5))))
    return out


def _save(image, path, format=None):
    from .bapps import _save_png
    from PIL import Image

    if format is None:
        return _save_png(image, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path, format=format)


def write_fixture(root, name, references=3, kinds=3, levels=2, size=(96, 64), seed=None):
    """A tiny `name` in its real layout (names, label file and its columns), small images (each
    dataset its own pictures and scores: seed by default its place in NAMES)."""
    root = Path(root)
    seed = NAMES.index(name) if seed is None and name in NAMES else seed or 0
    pictures = _pictures(references, size, seed)
    distorted = distorted_set(pictures, KINDS[:kinds], levels, seed)
    if name == "kadid10k":
        images = root / "kadid10k" / "images"
        for r, picture in enumerate(pictures):
            _save(picture, images / f"I{r + 1:02d}.png")
        lines = ["dist_img,ref_img,dmos,var"]
        for r, k, level, image, score in distorted:
            _save(image, images / f"I{r + 1:02d}_{k + 1:02d}_{level:02d}.png")
            lines.append(f"I{r + 1:02d}_{k + 1:02d}_{level:02d}.png,I{r + 1:02d}.png,{score:.2f},0.5")
        (root / "kadid10k" / "dmos.csv").write_text("\n".join(lines) + "\n")
    elif name == "tid2013":
        for r, picture in enumerate(pictures):  # the last reference lower-case, as TID2013's i25.bmp
            stem = f"I{r + 1:02d}.BMP" if r < references - 1 else f"i{r + 1:02d}.bmp"
            _save(picture, root / "reference_images" / stem, "BMP")
        lines = []
        for r, k, level, image, score in distorted:
            stem = f"i{r + 1:02d}_{k + 1:02d}_{level}.bmp"  # as the label file mostly writes them
            on_disk = stem  # on disk, level 1 starts with a capital I, and one kind's ends in .BMP too
            if level == 1:
                on_disk = "I" + stem[1:-4] + (".BMP" if k == 1 else ".bmp")
            _save(image, root / "distorted_images" / on_disk, "BMP")
            lines.append(f"{score * 1.6:.5f} {on_disk if (r, k, level) == (0, 0, 1) else stem}")
        (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    elif name == "pipal":
        base = root / "PIPAL"
        lines = ["hq_name,dist_name,elo_score"]
        for r, picture in enumerate(pictures):
            _save(picture, base / "Train_Ref" / f"A{r + 1:04d}.bmp", "BMP")
        for i, (r, k, level, image, score) in enumerate(distorted):
            stem = f"A{r + 1:04d}_{k:02d}_{level - 1:02d}.bmp"
            _save(image, base / "Dist_Imgs" / stem, "BMP")
            lines.append(f"A{r + 1:04d}.bmp,{stem},{1000 + 150 * score:.4f}")
        (root / "meta_info_PIPALDataset.csv").write_text("\n".join(lines) + "\n")
    else:
        raise InputError(f"unknown opinion-score dataset {name!r}; choose one of {', '.join(NAMES)}")
    manifest.write(root, name, [f for f in root.rglob("*") if f.is_file()], fixture=True, progress=False,
                    extra={"counts": {"references": references, "images": len(distorted)}, "image_size": list(size)})
    return root

