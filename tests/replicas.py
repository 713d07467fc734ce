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

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dplib.data import bapps, embeddings, iqa, nights, roads, superres


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


def _zip(members):
    """A deflated zip archive of {member name: bytes}, in the given order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


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
        data = _zip(members)
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


    # ----- Benchmark 1 beyond BAPPS: KADID-10k, TID2013, PIPAL, NIGHTS ----------------------------
    def _distorted(self, height, width, references, kinds, levels):
        """[(reference index, kind, level, picture)]: each reference, then darker and noisier copies."""
        pictures = [_picture(self.rng, height, width) for _ in range(references)]
        out = []
        for r, picture in enumerate(pictures):
            for k in range(1, kinds + 1):
                for level in range(1, levels + 1):
                    noise = self.rng.normal(0, 12 * level, picture.shape)
                    out.append((r, k, level, np.clip(picture * (1 - 0.1 * k) + noise, 0, 255).astype(np.uint8)))
        return pictures, out

    def kadid10k(self, references=2, kinds=2, levels=2):
        """https://datasets.vqa.mmsp-kn.de/archives/kadid10k.zip (the host's direct link, as piq's
        tests/results_benchmark.py gives it): kadid10k/dmos.csv, header "dist_img,ref_img,dmos,var"
        (a first row "I01_01_01.png,I01.png,4.57,0.496"; pyiqa's scripts/process_kadid10k.py reads
        the four columns in this order), and kadid10k/images/ holding references I01.png ... and
        distorted I01_01_01.png ... (reference, type, level) together (piq reads root/"images"),
        512 x 384 PNG (the dataset's paper)."""
        pictures, distorted = self._distorted(384, 512, references, kinds, levels)
        members = {f"kadid10k/images/I{r + 1:02d}.png": _png(p) for r, p in enumerate(pictures)}
        lines = ["dist_img,ref_img,dmos,var"]
        for r, k, level, picture in distorted:
            name = f"I{r + 1:02d}_{k:02d}_{level:02d}.png"
            members[f"kadid10k/images/{name}"] = _png(picture)
            lines.append(f"{name},I{r + 1:02d}.png,{4.8 - level * 0.9 - k * 0.3:.2f},{self.rng.uniform(0.1, 1):.3f}")
        members["kadid10k/dmos.csv"] = ("\n".join(lines) + "\n").encode()
        self.serve("/archives/kadid10k.zip", _zip(members))
        source = iqa.SOURCES["kadid10k"]
        return {(iqa, "SOURCES", "kadid10k"): dataclasses.replace(source, url=self.url("/archives/kadid10k.zip"),
                                                                  references=references, images=len(distorted))}

    def tid2013(self, references=2, kinds=2, levels=2):
        """https://www.ponomarenko.info/tid2013/tid2013.rar: a RAR (1.5-4.x) archive, made on
        Windows, with no top-level folder (fraunhoferhhi/CuriouslyEffectiveIQE's format_datasets.py
        reads reference_images/, distorted_images/ and mos_with_names.txt at the extraction folder):
        references I01.BMP ... and, for the last, lower-case i25.bmp; distorted iXX_TT_L.bmp, except
        IXX_01_1.bmp and IXX_11_1.BMP, IXX_13_1.BMP for every reference (pyiqa's meta_info
        CSV of TID2013 lists the names as on disk); mos_with_names.txt "5.51429 I01_01_1.bmp" per
        line (pyiqa's scripts/process_tid.py splits each line on white space); 512 x 384 BMP."""
        pictures, distorted = self._distorted(384, 512, references, kinds, levels)
        members = {}
        for r, picture in enumerate(pictures):
            name = f"I{r + 1:02d}.BMP" if r < references - 1 else f"i{r + 1:02d}.bmp"
            members[f"reference_images/{name}"] = _bmp(picture)
        lines = []
        for r, k, level, picture in distorted:
            kind = (1, 11)[k - 1] if kinds <= 2 else k
            name = f"i{r + 1:02d}_{kind:02d}_{level}.bmp"
            if level == 1:
                name = "I" + name[1:-4] + (".BMP" if kind == 11 else ".bmp")
            members[f"distorted_images/{name}"] = _bmp(picture)
            lines.append(f"{6.5 - level - 0.4 * k:.5f} {name}")
        members["mos_with_names.txt"] = ("\n".join(lines) + "\n").encode()
        data = rar4_stored(members)
        self.serve("/tid2013/tid2013.rar", data)
        source = iqa.SOURCES["tid2013"]
        return {(iqa, "SOURCES", "tid2013"): dataclasses.replace(source, url=self.url("/tid2013/tid2013.rar"),
                                                                 md5=hashlib.md5(data).hexdigest(),
                                                                 references=references, images=len(distorted))}

    def pipal(self, references=2, kinds=2, levels=2):
        """The IQA-PyTorch mirror on Hugging Face: /datasets/chaofengc/IQA-PyTorch-Datasets/resolve/
        main/pipal.tar (a plain tar; its sha256 and size in the LFS pointer) unpacking to
        PIPAL/Train_Ref/A0001.bmp and PIPAL/Dist_Imgs/A0001_00_00.bmp (pyiqa's
        default_dataset_configs.yml: dataroot_ref ./datasets/PIPAL/Train_Ref, dataroot_target
        ./datasets/PIPAL/Dist_Imgs), and /datasets/chaofengc/IQA-PyTorch-Datasets-metainfo/resolve/
        main/meta_info_PIPALDataset.csv, "hq_name,dist_name,elo_score" (pyiqa at 7c4ac4a:
        "A0001.bmp,A0001_00_00.bmp,1520.0648"); 288 x 288 BMP, Elo scores."""
        pictures, distorted = self._distorted(288, 288, references, kinds, levels)
        members = {f"PIPAL/Train_Ref/A{r + 1:04d}.bmp": _bmp(p) for r, p in enumerate(pictures)}
        lines = ["hq_name,dist_name,elo_score"]
        for r, k, level, picture in distorted:
            name = f"A{r + 1:04d}_{k - 1:02d}_{level - 1:02d}.bmp"
            members[f"PIPAL/Dist_Imgs/{name}"] = _bmp(picture)
            lines.append(f"A{r + 1:04d}.bmp,{name},{1700 - 120 * level - 40 * k + self.rng.uniform(-5, 5):.4f}")
        data = _tar(members)
        self.serve("/datasets/chaofengc/IQA-PyTorch-Datasets/resolve/main/pipal.tar", data)
        table = "/datasets/chaofengc/IQA-PyTorch-Datasets-metainfo/resolve/main/meta_info_PIPALDataset.csv"
        self.serve(table, ("\r\n".join(lines) + "\r\n").encode())  # CRLF, as pyiqa's tables
        source = iqa.SOURCES["pipal"]
        return {(iqa, "SOURCES", "pipal"): dataclasses.replace(
            source, url=self.url("/datasets/chaofengc/IQA-PyTorch-Datasets/resolve/main/pipal.tar"),
            sha256=hashlib.sha256(data).hexdigest(), size=len(data), labels_url=self.url(table),
            references=references, images=len(distorted))}

    def nights(self, per_split=3, side=256):
        """https://data.csail.mit.edu/nights/nights.zip (ssundaram21/dreamsim, dataset/
        download_dataset.sh), unzipping to nights/data.csv, nights/ref/000/002.png and
        nights/distort/000/002_0.png, _1.png (dataset/README.md); data.csv's columns by name
        (DreamSim's dataset.py reads votes, split, is_imagenet and, by position, id, right_vote
        and the three paths; TIGER-AI-Lab/UniIR reads right_vote as "0" or "1"); rows with fewer
        than 6 votes are DreamSim's filtered ones."""
        members, lines, kept = {}, ["id,left_vote,right_vote,votes,ref_path,left_path,right_path,split,is_imagenet,"
                                    "prompt"], 0
        for s, split in enumerate(("train", "val", "test")):
            for i in range(per_split):
                number = 2 + 5 * (s * per_split + i)  # "not an image triplet at every number"
                folder, stem = f"{number // 1000:03d}", f"{number % 1000:03d}"
                picture = _picture(self.rng, side, side)
                members[f"nights/ref/{folder}/{stem}.png"] = _png(picture)
                for left_right in (0, 1):
                    noisy = np.clip(picture + self.rng.normal(0, 10 + 30 * left_right, picture.shape), 0, 255)
                    members[f"nights/distort/{folder}/{stem}_{left_right}.png"] = _png(noisy.astype(np.uint8))
                votes = 6 if i < per_split - 1 else 5
                kept += votes >= 6
                lines.append(f"{number},1,0,{votes},ref/{folder}/{stem}.png,distort/{folder}/{stem}_0.png,"
                             f"distort/{folder}/{stem}_1.png,{split},{i % 2 == 0},An image of a dog")
        members["nights/data.csv"] = ("\n".join(lines) + "\n").encode()
        self.serve("/nights/nights.zip", _zip(members))
        return {(nights, "URL"): self.url("/nights/nights.zip"), (nights, "TRIPLETS"): kept}


def _bmp(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="BMP")
    return buffer.getvalue()


def rar4_stored(members):
    """A RAR 1.5-4.x archive of {name: bytes}, stored (method 0x30), as made on Windows (host OS 2,
    backslashes): the format of rarlab's technote.txt for RAR 4 (marker block "Rar!\\x1a\\x07\\x00",
    main header 0x73, one file header 0x74 per member with its CRC32, end block 0x7b; every header's
    CRC the low 16 bits of CRC32 over the header from its type byte). No compressor is needed to
    write it; libarchive (bsdtar), unrar and unar read it."""
    import struct

    def block(kind, flags, body, data=b""):
        header = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header + data

    dos_time = ((2013 - 1980) << 25) | (5 << 21) | (1 << 16) | (12 << 11)
    out = b"Rar!\x1a\x07\x00" + block(0x73, 0, struct.pack("<HI", 0, 0))
    for name, data in members.items():
        raw = name.replace("/", "\\").encode("ascii")
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), dos_time, 20, 0x30, len(raw), 0x20)
        out += block(0x74, 0x8000, body + raw, data)
    return out + block(0x7B, 0x4000, b"")


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
