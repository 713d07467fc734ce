"""dplib.data.roads: the real layout, whole-tile resizing, bad files, parallel download."""

import numpy as np
import pytest
import torch
from PIL import Image

from dplib.data import manifest, roads
from dplib.data.download import DownloadError

from replicas import Replica, host


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return roads.write_fixture(tmp_path_factory.mktemp("roads"))


def test_fixture_loads_resized_whole(root):
    tiles = roads.RoadTiles(root, "train", 64, True)
    image, mask = tiles[0]
    assert len(tiles) == 8 and image.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
    assert 0 <= mask.min() and mask.max() <= 1 and (mask > 0.5).any()
    # the whole 256 px tile, resized: its mean colour is kept (a crop would not keep it)
    original = np.asarray(Image.open(root / "train" / "sat" / f"{tiles.names[0]}.tiff"), dtype=np.float32) / 255
    assert torch.allclose(image.mean(dim=(1, 2)), torch.from_numpy(original.mean(axis=(0, 1))), atol=0.01)
    assert len(roads.RoadTiles(root, "test", 32, False, limit=2)) == 2


def test_the_authors_training_crops_are_native_windows_flipped_half_the_time(root, monkeypatch):
    crops = roads.training_set(root, 64, "crop_flip", antialias=False)
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
        roads.training_set(root, 64, "zoom", antialias=False)


def test_missing_split_names_the_download_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="dplib data download roads"):
        roads.RoadTiles(tmp_path, "test", 64, False)


def test_unpaired_and_corrupt_files_are_named(tmp_path, root):
    import shutil

    copy = tmp_path / "roads"
    shutil.copytree(root, copy)
    next((copy / "valid" / "map").iterdir()).unlink()
    with pytest.raises(ValueError, match="do not pair up"):
        roads.RoadTiles(copy, "valid", 64, False)
    bad = next((copy / "test" / "sat").iterdir())
    bad.write_bytes(b"II*\x00 broken tiff")
    with pytest.raises(ValueError, match=bad.name):
        roads.RoadTiles(copy, "test", 64, False)


def test_the_index_pages_hrefs_in_every_form_the_host_uses():
    page = ('<a href="http://www.cs.toronto.edu/~vmnih/data/mass_roads/train/sat/10078660_15.tiff">10078660_15.tiff</a><br />\n'
            '<a href="https://www.cs.toronto.edu/~vmnih/data/mass_roads/train/sat//10078677_15.tiff">10078677_15.tiff</a> </br>\n'
            '<a href="10078694_15.tiff">10078694_15.tiff</a>\n<a href="../index.html">up</a>\n')
    assert roads._listing(page) == ["10078660_15.tiff", "10078677_15.tiff", "10078694_15.tiff"]
    assert roads._listing("<html>no tiles here</html>") == []


ALL = {"splits": {"train", "valid", "test"}}


def test_download_from_a_replica_of_the_host_and_verify(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).mass_roads({"train": 3, "valid": 1, "test": 2}))
    http_server.drop_after["~vmnih/data/mass_roads/test/sat/10080677_15.tiff"] = 500
    target = roads.download(tmp_path / "data", ALL, workers=4, progress=False)
    for split, count in (("train", 3), ("valid", 1), ("test", 2)):
        assert len(roads.RoadTiles(target, split, 32, False)) == count
    assert len(manifest.read(target)["files"]) == 12
    count = len(http_server.requests)
    roads.download(target, ALL, progress=False)
    assert len(http_server.requests) - count == 6  # only the six index pages again
    (target / "test" / "map" / "10080660_15.tif").unlink()
    changed = target / "valid" / "map" / "10079660_15.tif"
    size = changed.stat().st_size
    with open(changed, "ab") as f:
        f.write(b"\0")  # one byte more: its size no longer the manifest's
    assert roads.verify(target, ALL) == ["test/map: 1 of the 2 .tif files",  # the test split's whole problem
                                         f"1 of the 8 files in {target / 'dplib-manifest.json'} are missing or changed "
                                         f"(e.g. valid/map/10079660_15.tif has {size + 1} bytes, the manifest {size})"]


def test_a_page_that_lists_no_tiles_stops_the_download(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).mass_roads({"train": 1, "valid": 1, "test": 1}))
    http_server.files["~vmnih/data/mass_roads/valid/map/index.html"] = b"<html>moved</html>"
    with pytest.raises(DownloadError, match="valid/map/index.html lists no tiles"):
        roads.download(tmp_path / "data", ALL, progress=False)


def test_a_tile_of_the_wrong_size_is_named_by_verify(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).mass_roads({"train": 1, "valid": 1, "test": 1}))
    target = roads.download(tmp_path / "data", ALL, progress=False)
    path = next((target / "valid" / "sat").iterdir())
    Image.new("RGB", (750, 750)).save(path)
    problems = roads.verify(target, {"splits": {"valid"}}, full=True)
    assert f"valid: {path.name} is 750 x 750 px, expected 1500 x 1500" in problems


def test_tiles_and_masks_are_resized_as_the_released_code_resized_tensors(root):
    """The released MultipleFolderDataset turned each tile and mask into a tensor (ToTensor) and
    JointTransform2D resized both with torchvision's functional.resize(tensor, 224): bilinear,
    and before torchvision 0.17 without antialiasing for tensors. antialias=True is the switch."""
    import torchvision.transforms.functional as TF

    name = sorted(p.stem for p in (root / "train" / "sat").iterdir())[0]
    tiles = roads.RoadTiles(root, "train", 64, False)
    index = tiles.names.index(name)
    for kind, ours in (("sat", tiles.images[index]), ("map", tiles.masks[index])):
        suffix = roads.KINDS[kind]
        tensor = TF.to_tensor(Image.open(root / "train" / kind / f"{name}{suffix}").convert("RGB" if kind == "sat" else "L"))
        released = TF.resize(tensor, 64, interpolation=TF.InterpolationMode.BILINEAR, antialias=False)
        assert (ours.float() / 255 - released).abs().max() <= 0.5 / 255 + 1e-6, kind  # stored as uint8
    smooth = roads.RoadTiles(root, "train", 64, True)
    # the thin roads of a mask: antialiasing keeps a 4x downscale's average, the released resize does not
    assert (smooth.masks[index].float() - tiles.masks[index].float()).abs().max() > 50

