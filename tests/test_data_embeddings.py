"""dplib.data.embeddings: SVHN and STL-10 through torchvision's classes, fixtures, download."""


import numpy as np
import pytest
import torch

from dplib.data import embeddings, manifest

from replicas import Replica, host


@pytest.fixture
def root(embeddings_root):
    return embeddings_root


@pytest.mark.parametrize("name, splits, side", [("svhn", ("extra", "train", "test"), 32),
                                                ("stl10", ("unlabeled", "train", "test"), 96)])
def test_fixtures_load_through_torchvision(root, name, splits, side):
    for split in splits:
        images, labels = embeddings.load_split(name, root, split, orientation="upright")
        assert images.dtype == torch.uint8 and images.shape[1:] == (3, side, side)
        assert len(labels) == len(images)
        if split in ("unlabeled",):
            assert (labels == -1).all()
        else:
            assert labels.min() >= 0 and labels.max() <= 9 and len(labels.unique()) > 3


def test_the_fixture_images_are_what_was_written(root, tmp_path):
    # the fixture's generator, replayed: torchvision must read back exactly those pixels and labels
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 96)
    expected = embeddings._patches(96, 32, rng, labels)
    images, read_labels = embeddings.load_split("svhn", root, "extra", orientation="upright")
    assert np.array_equal(images.permute(0, 2, 3, 1).numpy(), expected)
    assert np.array_equal(read_labels.numpy(), labels)  # the digit 0, stored as 10, comes back as 0


@pytest.mark.exercises(svhn_padding="reflect")
def test_svhn_is_reflection_padded_to_64():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    x = embeddings.to_model_input("svhn", images, "reflect")
    assert x.shape == (2, 3, 64, 64)
    torch.testing.assert_close(x[:, :, 16:48, 16:48], images.float() / 255)
    torch.testing.assert_close(x[:, :, 15, 16:48], x[:, :, 17, 16:48])  # a mirror, not zeros
    assert embeddings.to_model_input("stl10", torch.zeros(1, 3, 96, 96, dtype=torch.uint8), "reflect").shape == (1, 3, 96, 96)


def test_svhn_tile_padding_is_the_released_wrap_padding_bottom_and_right():
    """The companion papers' dataset_loader.py: X of (32, 32, 3, N) transposed (3, 2, 0, 1) to
    (N, C, H, W), then np.pad(images, ((0, 0), (0, 0), (0, 32), (0, 32)), mode='wrap'): a 2x2
    tiling whose top-left quarter is the digit (003's "2-by-2 grid")."""
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    x = embeddings.to_model_input("svhn", images, padding="tile")
    released = np.pad(images.numpy(), ((0, 0), (0, 0), (0, 32), (0, 32)), mode="wrap") / 255
    torch.testing.assert_close(x, torch.from_numpy(released).float())
    torch.testing.assert_close(x[:, :, :32, :32], images.float() / 255)
    with pytest.raises(ValueError, match="SVHN padding"):
        embeddings.to_model_input("svhn", images, padding="zeros")


def test_stl10_transposed_is_the_companions_reading_of_the_binary_file(root):
    """The companion papers read STL-10 as np.reshape(np.fromfile(f, np.uint8), (-1, 3, 96, 96))
    without torchvision's np.transpose(..., (0, 1, 3, 2)): height and width swapped."""
    released = np.reshape(np.fromfile(root / "stl10" / "stl10_binary" / "train_X.bin", dtype=np.uint8), (-1, 3, 96, 96))
    transposed, _ = embeddings.load_split("stl10", root, "train", orientation="transposed")
    upright, _ = embeddings.load_split("stl10", root, "train", orientation="upright")
    assert np.array_equal(transposed.numpy(), released)
    assert np.array_equal(upright.numpy(), released.transpose(0, 1, 3, 2))
    with pytest.raises(ValueError, match="STL-10 orientation"):
        embeddings.load_split("stl10", root, "train", orientation="mirrored")


def test_files_without_a_manifest_get_torchvisions_md5_and_missing_data_names_the_download(root, tmp_path):
    import shutil

    unvouched = tmp_path / "unvouched"
    shutil.copytree(root / "svhn", unvouched / "svhn")
    (unvouched / "svhn" / manifest.NAME).unlink()  # put in place by hand: torchvision checks the md5s
    with pytest.raises(FileNotFoundError, match="dplib data download svhn"):
        embeddings.load_split("svhn", unvouched, "train", orientation="upright")
    with pytest.raises(FileNotFoundError, match="dplib data download stl10"):
        embeddings.load_split("stl10", tmp_path / "nothing", "train", orientation="upright")


def test_the_random_split_is_seeded_with_int_0_2_n_for_validation():
    """The main paper's released random_split(data, [N - int(0.2 N), int(0.2 N)]), seeded here."""
    a, b = embeddings.split_indices(103, 1, "random")
    again, _ = embeddings.split_indices(103, 1, "random")
    other, _ = embeddings.split_indices(103, 2, "random")
    assert len(b) == int(103 * 0.2) == 20 and len(a) == 83 and not set(a.tolist()) & set(b.tolist())
    assert torch.equal(a, again) and not torch.equal(a, other)


def released_split_data(data, split_sizes=(0.8, 0.2)):
    """The companion papers' split_data (dataset_loader.py), written out as released."""
    start, splits = 0, []
    split_sizes = [s / sum(split_sizes) for s in split_sizes]
    for size in split_sizes:
        end = min(int(len(data) * size) + start, len(data))
        splits.append(data[start:end])
        start = end
    return splits


@pytest.mark.parametrize("count", [100, 103, 73_257, 5_000, 531_131])
def test_the_ordered_split_is_the_companions_split_data(count):
    train, validation = embeddings.split_indices(count, 123, "ordered")
    expected = released_split_data(torch.arange(count))
    assert torch.equal(train, expected[0]) and torch.equal(validation, expected[1])
    assert torch.equal(embeddings.split_indices(count, 7, "ordered")[0], train)  # the same in every repeat


MINI_SVHN, MINI_STL10 = {"train": 20, "test": 10, "extra": 30}, {"train": 20, "test": 10, "unlabeled": 12}


def test_svhn_download_from_a_replica_md5_checked_and_read_without_a_second_md5_pass(tmp_path, http_server,
                                                                                    monkeypatch):
    host(monkeypatch, Replica(http_server).svhn(MINI_SVHN))
    needs = embeddings.needs({"extra", "train", "test"})
    folder = embeddings.download(tmp_path / "data", needs, name="svhn", progress=False)
    assert sorted(p.name for p in folder.glob("*.mat")) == ["extra_32x32.mat", "test_32x32.mat", "train_32x32.mat"]
    assert embeddings.verify(tmp_path / "data", needs, full=True, name="svhn") == []
    images, labels = embeddings.load_split("svhn", tmp_path / "data", "train", orientation="upright")
    assert images.shape == (20, 3, 32, 32) and labels.max() <= 9  # the 10s of the file are 0s
    with open(folder / "test_32x32.mat", "ab") as f:
        f.write(b"x")  # changed after the download: the manifest no longer vouches, torchvision's md5 fails
    with pytest.raises(FileNotFoundError, match="svhn test not found or corrupted"):
        embeddings.load_split("svhn", tmp_path / "data", "test", orientation="upright")
    assert any("test_32x32.mat" in p for p in embeddings.verify(tmp_path / "data", needs, full=True,
                                                                             name="svhn"))


def test_stl10_download_never_loads_the_data_and_leaves_no_archive(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).stl10(MINI_STL10))
    monkeypatch.setattr(embeddings.datasets.STL10, "__init__", lambda *a, **k: pytest.fail("the download loaded it"))
    needs = embeddings.needs({"unlabeled", "train", "test"})
    folder = embeddings.download(tmp_path / "data", needs, name="stl10", progress=False)
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [
        "class_names.txt", "dplib-manifest.json", "fold_indices.txt", "test_X.bin", "test_y.bin", "train_X.bin",
        "train_y.bin", "unlabeled_X.bin"]  # the archive and its staging folder are gone
    assert embeddings.verify(tmp_path / "data", needs, name="stl10") == []
    (folder / "stl10_binary" / "test_y.bin").write_bytes(b"\x01" * 9)
    assert "stl10 test: 10 images but 9 labels" in embeddings.verify(tmp_path / "data", needs, name="stl10")


def test_the_published_counts_are_checked_against_the_files_headers(tmp_path, http_server, monkeypatch):
    host(monkeypatch, Replica(http_server).svhn(MINI_SVHN))
    embeddings.download(tmp_path / "data", embeddings.needs({"train"}), name="svhn", progress=False)
    monkeypatch.setattr(embeddings, "COUNTS", dict(embeddings.COUNTS, svhn={"train": 73_257}))
    assert embeddings.verify(tmp_path / "data", embeddings.needs({"train"}), name="svhn") == [
        "svhn train: 20 images, published 73257"]
