"""Miniatures of the real download hosts, served on 127.0.0.1 by the tests' HTTP server: the
same URL paths, the same index-page markup and the same archive member layouts as the real
hosts, with fewer and smaller files. Each builder states where every format fact comes from
(the public source read, never a guess), and returns what the miniature publishes (its file
counts and checksums), which the tests put in place of the real host's published facts.

    replica = Replica(http_server)
    published = replica.mass_roads({"train": 3, "valid": 1, "test": 2})
    with replica.hosting(monkeypatch, published): ... dplib data download roads ...

The contents are images drawn here; what matters is that everything around them (paths,
markup, members, names, fields, dtypes) is what a user's download meets.
"""

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dplib.data import bapps, embeddings, roads, superres


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _picture(rng, height, width):
    """A smooth picture with a few shapes (uint8 (h, w, 3)): compresses, resizes, has content."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([(xx * rng.uniform(0.2, 1.0)) % 256, (yy * rng.uniform(0.2, 1.0)) % 256,
                     np.full((height, width), rng.integers(0, 256))], axis=-1).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        draw.ellipse([x0, y0, x0 + width // 4 + 1, y0 + height // 4 + 1], fill=tuple(rng.integers(0, 256, 3).tolist()))
    return np.asarray(image)


def _tar(members, mode="w"):
    """A tar archive (mode "w" or "w:gz") of {member name: bytes}, in the given order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_400_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Replica:
    """The tests' HTTP server (tests/conftest.py, on 127.0.0.1) dressed as the real hosts."""

    def __init__(self, server, seed=0):
        self.server, self.rng = server, np.random.default_rng(seed)

    def url(self, path):
        return self.server.url + path.lstrip("/")

    def serve(self, path, data):
        self.server.files[path.lstrip("/")] = data

    # ----- Massachusetts Roads ----------------------------------------------------------------
    def mass_roads(self, counts):
        """https://www.cs.toronto.edu/~vmnih/data/mass_roads/{split}/{sat,map}/index.html and the
        tiles. The markup: one line per tile, `<a href="URL">NAME</a>` and a 10-character tail
        (the authors' mrd_collector, src/dataset_collector.py of their released code, slices
        `link[9:-10]` of each line and fetches the href as an absolute URL); the hrefs absolute,
        http as the public scrapers record them, a doubled slash before the name as one blog
        quotes the sibling mass_buildings page (`.../sat//22678915_15.tiff">... </br>`), and
        https as the host also serves. Tiles NNNNNNNN_15: aerial images .tiff, RGB, masks .tif,
        0 / 255 (Lasagne/Recipes' MRD loader), 1500 x 1500 px (Mnih 2013)."""
        path = "/~vmnih/data/mass_roads/"
        forms = ["http://www.cs.toronto.edu{path}{split}/{kind}/{name}",        # what the scrapers record
                 "http://www.cs.toronto.edu{path}{split}/{kind}//{name}",       # the doubled slash
                 "https://www.cs.toronto.edu{path}{split}/{kind}/{name}"]       # https
        tails = ["<br />", " </br>"]
        number = 10078660
        for split, count in counts.items():
            names = [f"{number + 17 * i}_15" for i in range(count)]
            number += 1000
            for kind, suffix in roads.KINDS.items():
                lines = []
                for i, stem in enumerate(names):
                    name = stem + suffix
                    href = forms[i % len(forms)].format(path=path, split=split, kind=kind, name=name)
                    lines.append(f'<a href="{href}">{name}</a>{tails[i % 2]}')
                    self.serve(f"{path}{split}/{kind}/{name}", self._tile(kind, stem))
                self.serve(f"{path}{split}/{kind}/index.html", ("\n".join(lines) + "\n").encode())
        return {(roads, "URL"): self.url(path), (roads, "SPLITS"): dict(counts)}

    def _tile(self, kind, stem):
        """A 1500 x 1500 tile: roads drawn on smooth ground (sat, RGB) and their mask (map, 0 / 255)."""
        rng = np.random.default_rng(int(stem.split("_")[0]))
        side = roads.TILE[0]
        mask = Image.new("L", (side, side), 0)
        sat = Image.fromarray(_picture(rng, side, side))
        for _ in range(3):
            points = [tuple(rng.integers(0, side, 2).tolist()) for _ in range(3)]
            ImageDraw.Draw(mask).line(points, fill=255, width=30)
            ImageDraw.Draw(sat).line(points, fill=(170, 170, 160), width=34)
        buffer = io.BytesIO()
        (sat if kind == "sat" else mask).save(buffer, format="TIFF", compression="tiff_deflate")
        return buffer.getvalue()

    # ----- BAPPS ------------------------------------------------------------------------------
    def bapps(self, per_subset=4):
        """https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/{twoafc_val,jnd,
        twoafc_train}.tar.gz, gzip. Members: twoafc_val.tar.gz holds val/<subset>/{ref,p0,p1}/
        NAME.png and judge/NAME.npy, twoafc_train.tar.gz train/..., jnd.tar.gz jnd/val/<subset>/
        {p0,p1}/NAME.png and same/NAME.npy (richzhang/PerceptualSimilarity: download_dataset.sh
        extracts twoafc_* into dataset/2afc and jnd into dataset/; its data loaders read those
        folders; the stem is shared across a subset's folders). Patches 64 x 64 PNG; judge and
        same: one float per file (the fraction of people)."""
        archives = {"twoafc_val.tar.gz": {}, "jnd.tar.gz": {}, "twoafc_train.tar.gz": {}}
        for archive, top, subsets, images, label in (
                ("twoafc_val.tar.gz", "val", bapps.TWO_AFC_SUBSETS, ("ref", "p0", "p1"), "judge"),
                ("twoafc_train.tar.gz", "train", bapps.TRAIN_SUBSETS, ("ref", "p0", "p1"), "judge"),
                ("jnd.tar.gz", "jnd/val", bapps.JND_SUBSETS, ("p0", "p1"), "same")):
            for subset in subsets:
                for i in range(per_subset):
                    stem = f"{i:06d}"
                    for folder in images:
                        archives[archive][f"{top}/{subset}/{folder}/{stem}.png"] = _png(_picture(self.rng, 64, 64))
                    buffer = io.BytesIO()
                    np.save(buffer, np.array([self.rng.uniform()], dtype=np.float32))
                    archives[archive][f"{top}/{subset}/{label}/{stem}.npy"] = buffer.getvalue()
        sha256 = {}
        for name, members in archives.items():
            data = _tar(members, "w:gz")
            self.serve(f"/dataset/{name}", data)
            sha256[name] = hashlib.sha256(data).hexdigest()
        counts = {part: {s: (per_subset, 0) for s in subsets} for part, subsets in
                  (("2afc/val", bapps.TWO_AFC_SUBSETS), ("jnd/val", bapps.JND_SUBSETS),
                   ("2afc/train", bapps.TRAIN_SUBSETS))}
        return {(bapps, "URL"): self.url("/dataset/"), (bapps, "SHA256"): sha256, (bapps, "COUNTS"): counts}

    # ----- COCO-2014 and the EDSR test sets ----------------------------------------------------
    def coco(self, train=30, val=10):
        """http://images.cocodataset.org/annotations/annotations_trainval2014.zip with its six
        members under annotations/ (captions_, instances_, person_keypoints_ {train,val}2014.json,
        as a public script pinning the zip's central directory lists them), each image entry with
        the fields license, file_name, coco_url, height, width, date_captured, flickr_url, id
        (a public gist of captions_val2014.json); images at /{split}2014/COCO_{split}2014_
        <id:012d>.jpg. Sizes vary, some under 288 px, as COCO's do."""
        members = {}
        for split, count in (("train", train), ("val", val)):
            images = []
            for i in range(count):
                identifier = 9 + 37 * i
                name = f"COCO_{split}2014_{identifier:012d}.jpg"
                height, width = int(self.rng.integers(200, 420)), int(self.rng.integers(200, 480))
                self.serve(f"/{split}2014/{name}", _jpeg(_picture(self.rng, height, width)))
                images.append({"license": 3, "file_name": name,
                               "coco_url": f"http://images.cocodataset.org/{split}2014/{name}", "height": height,
                               "width": width, "date_captured": "2013-11-14 16:28:13",
                               "flickr_url": f"http://farm4.staticflickr.com/{identifier}_z.jpg", "id": identifier})
            info = {"description": "COCO 2014 Dataset", "url": "http://cocodataset.org", "version": "1.0",
                    "year": 2014, "contributor": "COCO Consortium", "date_created": "2017/09/01"}
            for kind in ("captions", "instances", "person_keypoints"):
                members[f"annotations/{kind}_{split}2014.json"] = json.dumps(
                    {"info": info, "licenses": [], "images": images, "annotations": []}).encode()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        data = buffer.getvalue()
        self.serve("/annotations/annotations_trainval2014.zip", data)
        return {(superres, "COCO_IMAGES"): self.url("/"),
                (superres, "COCO_ANNOTATIONS"): self.url("/annotations/annotations_trainval2014.zip"),
                (superres, "COCO_ANNOTATIONS_SIZE"): len(data),
                (superres, "COCO_ANNOTATIONS_SHA256"): hashlib.sha256(data).hexdigest()}

    # Set5's names (EDSR-PyTorch's benchmark paths, e.g. benchmark/Set5/LR_bicubic/X2/babyx2.png);
    # Set14's are the set's standard names; B100's the Berkeley image ids; Urban100's img001...
    SET_NAMES = {"Set5": ("baby", "bird", "butterfly", "head", "woman"),
                 "Set14": ("baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman",
                           "lenna", "man", "monarch", "pepper", "ppt3", "zebra")}

    def edsr_benchmark(self):
        """https://cv.snu.ac.kr/research/EDSR/benchmark.tar (plain tar): benchmark/<set>/HR/NAME.png
        and benchmark/<set>/LR_bicubic/X{2,3,4}/NAMEx{s}.png for Set5, Set14, B100 and Urban100
        (torchSR's track_dirs; EDSR-PyTorch src/data/srdata.py). 5, 14, 100 and 100 images."""
        names = dict(self.SET_NAMES, B100=tuple(str(3096 + 1000 * i) for i in range(100)),
                     Urban100=tuple(f"img{i:03d}" for i in range(1, 101)))
        members = {}
        for folder, stems in names.items():
            for stem in stems:
                height, width = int(self.rng.integers(36, 60)), int(self.rng.integers(36, 60))
                picture = _picture(self.rng, height, width)
                members[f"benchmark/{folder}/HR/{stem}.png"] = _png(picture)
                for scale in (2, 3, 4):
                    small = np.asarray(Image.fromarray(picture).resize((width // scale, height // scale)))
                    members[f"benchmark/{folder}/LR_bicubic/X{scale}/{stem}x{scale}.png"] = _png(small)
        data = _tar(members)
        self.serve("/research/EDSR/benchmark.tar", data)
        return {(superres, "BENCHMARK_URL"): self.url("/research/EDSR/benchmark.tar"),
                (superres, "BENCHMARK_MD5"): hashlib.md5(data).hexdigest()}

    # ----- SVHN and STL-10 ----------------------------------------------------------------------
    def svhn(self, counts):
        """http://ufldl.stanford.edu/housenumbers/{train,test,extra}_32x32.mat (torchvision's
        SVHN.split_list): MATLAB files with X (32, 32, 3, N) uint8 and y (N, 1), the digit 0
        stored as 10 (the dataset's page; torchvision transposes X and maps 10 to 0)."""
        from scipy.io import savemat

        split_list = {}
        for split, count in counts.items():
            labels = self.rng.integers(0, 10, count)
            images = np.stack([_picture(self.rng, 32, 32) for _ in range(count)])   # (N, 32, 32, 3)
            buffer = io.BytesIO()
            savemat(buffer, {"X": images.transpose(1, 2, 3, 0), "y": np.where(labels == 0, 10, labels)[:, None]
                             .astype(np.uint8)})
            data = buffer.getvalue()
            self.serve(f"/housenumbers/{split}_32x32.mat", data)
            split_list[split] = [self.url(f"/housenumbers/{split}_32x32.mat"), f"{split}_32x32.mat",
                                 hashlib.md5(data).hexdigest()]
        return {(embeddings.datasets.SVHN, "split_list"): split_list, (embeddings, "COUNTS", "svhn"): dict(counts)}

    def stl10(self, counts):
        """http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz (torchvision's STL10.url),
        gzip, one folder stl10_binary/ with train_X.bin, train_y.bin, test_X.bin, test_y.bin,
        unlabeled_X.bin, class_names.txt, fold_indices.txt (google-research/mixmatch reads these
        members); images uint8, column-major 3 x 96 x 96, labels 1-10 (the dataset's page)."""
        members, md5s = {}, {}
        for split, count in counts.items():
            images = np.stack([_picture(self.rng, 96, 96) for _ in range(count)])   # (N, 96, 96, 3)
            members[f"stl10_binary/{split}_X.bin"] = images.transpose(0, 3, 2, 1).tobytes()  # column-major
            if split != "unlabeled":
                members[f"stl10_binary/{split}_y.bin"] = (self.rng.integers(0, 10, count) + 1).astype(np.uint8).tobytes()
        members["stl10_binary/class_names.txt"] = "\n".join(
            ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]).encode() + b"\n"
        members["stl10_binary/fold_indices.txt"] = "\n".join(
            " ".join(str(i) for i in range(k, counts["train"], 10)) for k in range(10)).encode() + b"\n"
        for name, data in members.items():
            md5s[Path(name).name] = hashlib.md5(data).hexdigest()
        archive = _tar(members, "w:gz")
        self.serve("/~acoates/stl10/stl10_binary.tar.gz", archive)
        cls = embeddings.datasets.STL10
        return {(cls, "url"): self.url("/~acoates/stl10/stl10_binary.tar.gz"),
                (cls, "tgz_md5"): hashlib.md5(archive).hexdigest(),
                (cls, "train_list"): [[f, md5s[f]] for f, _ in cls.train_list],
                (cls, "test_list"): [[f, md5s[f]] for f, _ in cls.test_list],
                (embeddings, "COUNTS", "stl10"): dict(counts)}


def host(monkeypatch, *published):
    """Put a miniature's published facts (URLs, counts, checksums) in place of the real host's:
    {(module or class, attribute): value}, or (module, attribute, key) for one entry of a dict."""
    for facts in published:
        for key, value in facts.items():
            if len(key) == 3:
                owner, name, entry = key
                value = dict(getattr(owner, name), **{entry: value})
            else:
                owner, name = key
            monkeypatch.setattr(owner, name, value)
