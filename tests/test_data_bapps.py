"""dplib.data.bapps and dplib.data.download: the real layout, bad files, downloads over HTTP."""

import io
import shutil
import tarfile

import numpy as np
import pytest
import torch

from dplib.data import bapps
from dplib.data.download import DownloadError, extract, fetch, sha256sum


def test_fixture_loads_in_the_real_layout(bapps_root):
    for subset in bapps.TWO_AFC_SUBSETS:
        dataset = bapps.TwoAFCDataset(bapps_root, subset)
        item = dataset[0]
        assert len(dataset) == 6 and item["ref"].shape == (3, 64, 64) and 0 <= item["judge"] <= 1
        assert item["ref"].dtype == torch.float32 and item["p0"].max() <= 1
    jnd = bapps.JNDDataset(bapps_root, "cnn", limit=4)
    assert len(jnd) == 4 and jnd[3]["p1"].shape == (3, 64, 64)


def test_fixture_judgements_follow_distortion_strength(bapps_root):
    # people (here: the fixture) prefer the less distorted patch; pixel distance agrees mostly
    agree = []
    for subset in bapps.TWO_AFC_SUBSETS:
        dataset = bapps.TwoAFCDataset(bapps_root, subset)
        for i in range(len(dataset)):
            item = dataset[i]
            d0, d1 = ((item["ref"] - item[p]).pow(2).mean().item() for p in ("p0", "p1"))
            agree.append((d1 < d0) == (item["judge"] > 0.5))
    assert np.mean(agree) > 0.6


def test_patches_are_resized_to_64(tmp_path):
    root = bapps.write_fixture(tmp_path / "b", patches_per_subset=1)
    path = root / "2afc" / "val" / "cnn" / "ref" / "000000.png"
    from PIL import Image

    Image.new("RGB", (100, 80), (255, 0, 0)).save(path)
    assert bapps.load_patch(path).shape == (3, 64, 64)


@pytest.fixture
def broken(tmp_path, bapps_root):
    root = tmp_path / "bapps"
    shutil.copytree(bapps_root, root)
    return root


def test_missing_root_names_the_download_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="dplib data download bapps --root"):
        bapps.TwoAFCDataset(tmp_path / "nothing", "cnn")
    with pytest.raises(FileNotFoundError, match="dplib data download bapps"):
        bapps.JNDDataset(tmp_path / "nothing", "cnn")


def test_mismatched_counts_name_the_folder(broken):
    next((broken / "2afc/val/cnn/p0").iterdir()).unlink()
    with pytest.raises(ValueError, match=r"2afc/val/cnn has mismatched file counts"):
        bapps.TwoAFCDataset(broken, "cnn")


def test_files_that_do_not_pair_up_are_named(broken):
    (broken / "jnd/val/cnn/p1/000002.png").rename(broken / "jnd/val/cnn/p1/000099.png")
    with pytest.raises(ValueError, match="do not pair up"):
        bapps.JNDDataset(broken, "cnn")


def test_corrupt_png_is_named(broken):
    path = broken / "2afc/val/color/p1/000003.png"
    path.write_bytes(b"not a png at all")
    dataset = bapps.TwoAFCDataset(broken, "color")
    with pytest.raises(ValueError, match="000003.png"):
        dataset[3]


def test_judge_of_the_wrong_shape_is_named(broken):
    path = broken / "2afc/val/deblur/judge/000001.npy"
    np.save(path, np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"000001.npy holds an array of shape \(2,\)"):
        bapps.TwoAFCDataset(broken, "deblur")
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read the judgement file"):
        bapps.TwoAFCDataset(broken, "deblur")


@pytest.fixture
def archives(tmp_path, bapps_root):
    folder = bapps.write_fixture_archives(bapps_root, tmp_path / "archives")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_download_from_a_local_server(tmp_path, http_server, archives):
    http_server.files.update(archives)
    root = bapps.download(tmp_path / "data", base_url=http_server.url,
                          sha256={k: __import__("hashlib").sha256(v).hexdigest() for k, v in archives.items()})
    assert len(bapps.TwoAFCDataset(root, "traditional")) == 6 and len(bapps.JNDDataset(root, "cnn")) == 6
    assert not list(root.glob(".downloads/*.tar.gz")) and not list(root.rglob(".extracting-*"))
    requests = len(http_server.requests)
    bapps.download(root, base_url=http_server.url)  # already in place: nothing fetched
    assert len(http_server.requests) == requests


def test_dropped_connection_resumes(tmp_path, http_server, archives):
    http_server.files.update(archives)
    http_server.drop_after["jnd.tar.gz"] = 1000
    root = bapps.download(tmp_path / "data", base_url=http_server.url)
    assert len(bapps.JNDDataset(root, "traditional")) == 6
    jnd_requests = [r for name, r in http_server.requests if name == "jnd.tar.gz"]
    assert jnd_requests == [None, "bytes=1000-"]


def test_corrupt_archive_leaves_nothing_half_extracted(tmp_path, http_server, archives):
    data = bytearray(archives["twoafc_val.tar.gz"])
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # right size, garbage inside
    http_server.files.update(archives, **{"twoafc_val.tar.gz": bytes(data)})
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        bapps.download(tmp_path / "data", base_url=http_server.url)
    assert not (tmp_path / "data" / "2afc" / "val").exists()
    assert not list((tmp_path / "data").rglob(".extracting-*"))


def test_checksum_mismatch_removes_the_file(tmp_path, http_server, archives):
    http_server.files.update(archives)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(http_server.url + "jnd.tar.gz", tmp_path / "jnd.tar.gz", sha256="0" * 64, progress=False)
    assert not (tmp_path / "jnd.tar.gz").exists() and not (tmp_path / "jnd.tar.gz.part").exists()


def test_failed_download_names_the_file_and_keeps_the_part(tmp_path, http_server):
    with pytest.raises(DownloadError, match="does not exist"):
        fetch(http_server.url + "missing.tar.gz", tmp_path / "missing.tar.gz", progress=False)
    http_server.close()
    with pytest.raises(DownloadError, match="put the file at"):
        fetch(http_server.url + "x.tar.gz", tmp_path / "x.tar.gz", retries=1, timeout=2, progress=False)


def test_fetch_verifies_and_skips_complete_files(tmp_path, http_server):
    http_server.files["a.bin"] = b"x" * 5000
    path = fetch(http_server.url + "a.bin", tmp_path / "a.bin", sha256=__import__("hashlib").sha256(b"x" * 5000).hexdigest(),
                 progress=False)
    assert path.read_bytes() == b"x" * 5000 and sha256sum(path) == __import__("hashlib").sha256(b"x" * 5000).hexdigest()
    count = len(http_server.requests)
    fetch(http_server.url + "a.bin", path, progress=False)
    assert len(http_server.requests) == count


def _tar_with(member_name, tmp_path, link=None):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as t:
        info = tarfile.TarInfo(member_name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, link
            t.addfile(info)
        else:
            info.size = 4
            t.addfile(info, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize("name, link", [("../escaped.txt", None), ("/tmp/absolute-escape.txt", None),
                                        ("inside/link", "../../outside")])
def test_extraction_refuses_paths_escaping_the_root(tmp_path, name, link):
    archive = _tar_with(name, tmp_path, link)
    with pytest.raises(DownloadError, match="outside"):
        extract(archive, tmp_path / "root")
    assert not (tmp_path / "escaped.txt").exists() and not list((tmp_path / "root").iterdir())
