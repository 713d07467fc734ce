"""dplib.data.bapps: the real layout, bad files, verify, and the download from a replica of its host."""

import shutil

import numpy as np
import pytest
import torch

from dplib.data import bapps, manifest
from dplib.data.download import DownloadError

from replicas import Replica, host


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


VAL = bapps.needs(two_afc_val=bapps.TWO_AFC_SUBSETS, jnd_val=bapps.JND_SUBSETS)


def test_download_from_a_replica_of_the_host_fetches_what_is_needed_and_verifies(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).bapps(per_subset=3))
    http_server.drop_after["dataset/jnd.tar.gz"] = 1000
    root = bapps.download(tmp_path / "data", VAL, progress=False)
    assert len(bapps.TwoAFCDataset(root, "frameinterp")) == 3 and len(bapps.JNDDataset(root, "cnn")) == 3
    assert not (root / "2afc" / "train").exists() and not (root / ".downloads").exists()  # not needed: not fetched
    assert [r for name, r in http_server.requests if name == "dataset/jnd.tar.gz"] == [None, "bytes=1000-"]
    recorded = manifest.read(root)
    assert "2afc/val/color/ref/000002.png" in recorded["files"] and set(recorded["archives"]) == {
        "twoafc_val.tar.gz", "jnd.tar.gz"}  # jnd's sha256, published nowhere, is recorded here
    requests = len(http_server.requests)
    bapps.download(root, VAL, progress=False)  # complete: nothing fetched again
    assert len(http_server.requests) == requests
    bapps.download(root, bapps.needs(two_afc_train=("mix",)), progress=False)
    assert len(bapps.TwoAFCDataset(root, "mix", split="train")) == 3


def test_verify_names_a_short_subset_and_a_changed_file(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).bapps(per_subset=3))
    root = bapps.download(tmp_path / "data", VAL, progress=False)
    assert bapps.verify(root, VAL, full=True) == []
    for folder in ("ref", "p0", "p1"):
        (root / "2afc" / "val" / "cnn" / folder / "000001.png").unlink()
    (root / "2afc" / "val" / "cnn" / "judge" / "000001.npy").unlink()
    (root / "jnd" / "val" / "cnn" / "p0" / "000000.png").write_bytes(b"\x89PNG broken")
    np.save(root / "2afc" / "val" / "color" / "judge" / "000002.npy", np.array([0.123], dtype=np.float32))
    problems = bapps.verify(root, VAL, full=True)
    assert "2afc/val/cnn: 2 items, published 3" in problems
    assert any(p.startswith("jnd/val/cnn: 1 unreadable files") for p in problems)
    assert problems[-1].endswith("are missing or changed (e.g. 2afc/val/color/judge/000002.npy differs from the "
                                 "manifest (sha256))")  # the same size, other bytes: only the manifest sees it
    assert len(problems) == 3 and len(bapps.verify(root, VAL)) == 2  # sizes only without full


def test_the_published_counts_allow_the_rounding_of_the_readme_and_no_more():
    assert bapps.COUNTS["2afc/val"]["superres"] == (10_900, 50) and bapps.COUNTS["jnd/val"]["cnn"] == (4_800, 50)
    assert bapps.SHA256["twoafc_val.tar.gz"].startswith("41486671")  # sileod/tasksource's pin


def test_a_corrupt_archive_stops_the_download_and_leaves_nothing_half_extracted(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).bapps(per_subset=2))
    data = bytearray(http_server.files["dataset/twoafc_val.tar.gz"])
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # right size, garbage inside
    http_server.files["dataset/twoafc_val.tar.gz"] = bytes(data)
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        bapps.download(tmp_path / "data", VAL, sha256={}, progress=False)
    assert not (tmp_path / "data" / "2afc" / "val").exists()
    assert not list((tmp_path / "data").rglob(".extracting-*"))

