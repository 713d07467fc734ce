"""dplib.data.embeddings: SVHN and STL-10 through torchvision's classes, fixtures, download."""

import hashlib

import numpy as np
import pytest
import torch

from dplib.data import embeddings


@pytest.fixture
def root(embeddings_root):
    return embeddings_root


@pytest.mark.parametrize("name, splits, side", [("svhn", ("extra", "train", "test"), 32),
                                                ("stl10", ("unlabeled", "train", "test"), 96)])
def test_fixtures_load_through_torchvision(root, name, splits, side):
    for split in splits:
        images, labels = embeddings.load_split(name, root, split)
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
    images, read_labels = embeddings.load_split("svhn", root, "extra")
    assert np.array_equal(images.permute(0, 2, 3, 1).numpy(), expected)
    assert np.array_equal(read_labels.numpy(), labels)  # the digit 0, stored as 10, comes back as 0


def test_svhn_is_reflection_padded_to_64():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    x = embeddings.to_model_input("svhn", images)
    assert x.shape == (2, 3, 64, 64)
    torch.testing.assert_close(x[:, :, 16:48, 16:48], images.float() / 255)
    torch.testing.assert_close(x[:, :, 15, 16:48], x[:, :, 17, 16:48])  # a mirror, not zeros
    assert embeddings.to_model_input("stl10", torch.zeros(1, 3, 96, 96, dtype=torch.uint8)).shape == (1, 3, 96, 96)


def test_svhn_tile_padding_is_the_2x2_tiling_centred_on_the_digit():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    x = embeddings.to_model_input("svhn", images, padding="tile")
    # the companion papers' 2x2 grid of the digit, shifted by 16 px so the original is central
    tiled = torch.roll(images.float().repeat(1, 1, 2, 2) / 255, shifts=(16, 16), dims=(2, 3))
    torch.testing.assert_close(x, tiled)
    torch.testing.assert_close(x[:, :, 16:48, 16:48], images.float() / 255)
    with pytest.raises(ValueError, match="SVHN padding"):
        embeddings.to_model_input("svhn", images, padding="zeros")


def test_real_data_is_md5_checked_and_missing_data_names_the_download(root, tmp_path):
    import shutil

    unmarked = tmp_path / "unmarked"
    shutil.copytree(root / "svhn", unmarked / "svhn")
    (unmarked / "svhn" / embeddings.FIXTURE_MARKER).unlink()  # now it claims to be the real thing
    with pytest.raises(FileNotFoundError, match="dplib data download svhn"):
        embeddings.load_split("svhn", unmarked, "train")
    with pytest.raises(FileNotFoundError, match="dplib data download stl10"):
        embeddings.load_split("stl10", tmp_path / "nothing", "train")


def test_split_is_seeded_80_20_and_disjoint():
    a, b = embeddings.split_indices(100, seed=1)
    again, _ = embeddings.split_indices(100, seed=1)
    other, _ = embeddings.split_indices(100, seed=2)
    assert len(a) == 80 and len(b) == 20 and not set(a.tolist()) & set(b.tolist())
    assert torch.equal(a, again) and not torch.equal(a, other)


def test_svhn_download_through_torchvision_from_a_local_server(tmp_path, http_server, root):
    files = {f"{split}_32x32.mat": (root / "svhn" / f"{split}_32x32.mat").read_bytes()
             for split in ("extra", "train", "test")}
    http_server.files.update(files)
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}
    folder = embeddings.download("svhn", tmp_path / "data", mirror=http_server.url, md5=md5)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    with pytest.raises(RuntimeError, match="could not download svhn"):
        embeddings.download("svhn", tmp_path / "bad", mirror=http_server.url, md5={n: "0" * 32 for n in files})
