"""dplib.data.roads: the real layout, whole-tile resizing, bad files, parallel download."""

import numpy as np
import pytest
import torch
from PIL import Image

from dplib.data import roads


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return roads.write_fixture(tmp_path_factory.mktemp("roads"))


def test_fixture_loads_resized_whole(root):
    tiles = roads.RoadTiles(root, "train", size=64)
    image, mask = tiles[0]
    assert len(tiles) == 8 and image.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
    assert 0 <= mask.min() and mask.max() <= 1 and (mask > 0.5).any()
    # the whole 256 px tile, resized: its mean colour is kept (a crop would not keep it)
    original = np.asarray(Image.open(root / "train" / "sat" / f"{tiles.names[0]}.tiff"), dtype=np.float32) / 255
    assert torch.allclose(image.mean(dim=(1, 2)), torch.from_numpy(original.mean(axis=(0, 1))), atol=0.01)
    assert len(roads.RoadTiles(root, "test", size=32, limit=2)) == 2


def test_the_authors_training_crops_are_native_windows_flipped_half_the_time(root, monkeypatch):
    crops = roads.training_set(root, size=64, transform="crop_flip")
    assert isinstance(crops, roads.RoadCrops) and len(crops) == 8
    original = np.asarray(Image.open(root / "train" / "sat" / f"{crops.names[0]}.tiff"), dtype=np.float32) / 255
    mask = np.asarray(Image.open(root / "train" / "map" / f"{crops.names[0]}.tif"), dtype=np.float32) / 255
    draws = iter([10, 20])  # top, left
    monkeypatch.setattr(roads.random, "randint", lambda a, b: next(draws))
    monkeypatch.setattr(roads.random, "random", lambda: 0.2)  # < 0.5: flipped
    image, crop_mask = crops[0]
    window = torch.from_numpy(original[10:74, 20:84]).permute(2, 0, 1)
    torch.testing.assert_close(image, window.flip(-1))  # native resolution: no resizing
    torch.testing.assert_close(crop_mask[0], torch.from_numpy(mask[10:74, 20:84]).flip(-1))
    assert set(crop_mask.unique().tolist()) <= {0.0, 1.0}
    draws = iter([0, 0])
    monkeypatch.setattr(roads.random, "random", lambda: 0.7)  # not flipped
    torch.testing.assert_close(crops[0][0], torch.from_numpy(original[:64, :64]).permute(2, 0, 1))
    with pytest.raises(ValueError, match="choose one of resize, crop_flip"):
        roads.training_set(root, transform="zoom")


def test_missing_split_names_the_download_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="dplib data download roads"):
        roads.RoadTiles(tmp_path, "test")


def test_unpaired_and_corrupt_files_are_named(tmp_path, root):
    import shutil

    copy = tmp_path / "roads"
    shutil.copytree(root, copy)
    next((copy / "valid" / "map").iterdir()).unlink()
    with pytest.raises(ValueError, match="do not pair up"):
        roads.RoadTiles(copy, "valid")
    bad = next((copy / "test" / "sat").iterdir())
    bad.write_bytes(b"II*\x00 broken tiff")
    with pytest.raises(ValueError, match=bad.name):
        roads.RoadTiles(copy, "test")


def test_download_reads_the_index_pages_and_fetches_in_parallel(tmp_path, http_server, root):
    for split in ("train", "valid", "test"):
        for kind in ("sat", "map"):
            files = sorted((root / split / kind).iterdir())
            links = "".join(f'<a href="{p.name}">{p.name}</a>' for p in files)
            http_server.files[f"{split}/{kind}/index.html"] = f"<html>{links}</html>".encode()
            for p in files:
                http_server.files[f"{split}/{kind}/{p.name}"] = p.read_bytes()
    http_server.drop_after["test/sat/10000001_15.tiff"] = 500
    target = roads.download(tmp_path / "data", base_url=http_server.url, workers=4)
    for split, count in (("train", 8), ("valid", 2), ("test", 3)):
        assert len(roads.RoadTiles(target, split, size=32)) == count
    count = len(http_server.requests)
    roads.download(tmp_path / "data", base_url=http_server.url)
    assert len(http_server.requests) - count == 6  # only the six index pages again
