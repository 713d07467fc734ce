"""dplib.data.superres: degradation, the real layout, and downloads from a local server."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from dplib.data import superres

from replicas import Replica, host


def pairs(root, split="train", count=12, crop=96, crop_mode="resize_center", degradation="pil", seed=0, scale=4):
    """CocoPairs with every argument given (the loaders keep no defaults of the notebook's)."""
    return superres.CocoPairs(root, split, count=count, scale=scale, crop=crop, crop_mode=crop_mode,
                              degradation=degradation, seed=seed)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return superres.write_fixture(tmp_path_factory.mktemp("superres"))


def test_degrade_is_blur_then_bicubic():
    hr = torch.rand(2, 3, 32, 48)
    expected = F.interpolate(TF.gaussian_blur(hr, 7, 1.0), size=(8, 12), mode="bicubic", align_corners=False)
    torch.testing.assert_close(superres.degrade(hr, 4), expected.clamp(0, 1))
    # a blur with sigma 1 leaves a constant image constant: the degradation changes scale, not colour
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(superres.degrade(flat, 8), torch.full((1, 3, 2, 2), 0.3))
    with pytest.raises(ValueError, match="multiple of the scale"):
        superres.degrade(torch.rand(1, 3, 30, 32), 4)
    with pytest.raises(ValueError, match="power of two"):
        superres.degrade(torch.rand(1, 3, 30, 30), 3)


def test_pil_degradation_is_pils_blur_then_antialiased_bicubic():
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(0)
    array = (rng.random((64, 96, 3)) * 255).astype(np.uint8)   # fine detail: where antialiasing matters
    image = Image.fromarray(array)
    low = superres.to_tensor(superres.pil_degrade(image, (24, 16)))
    blurred = superres.to_tensor(image.filter(ImageFilter.GaussianBlur(radius=1)))[None]
    # torch's antialiased bicubic is an independent implementation of PIL's resize filter
    reference = F.interpolate(blurred, size=(16, 24), mode="bicubic", antialias=True, align_corners=False)[0]
    assert (low - reference).abs().max() < 3 / 255
    aliased = F.interpolate(blurred, size=(16, 24), mode="bicubic", antialias=False, align_corners=False)[0]
    assert (low - aliased).abs().mean() > 5 * (low - reference).abs().mean()


def test_resize_center_pairs_on_a_hand_built_image():
    # 400 x 300: the left half black, the right half white. Short side to 288: 384 x 288, whose
    # centre 288 columns start at 48, so the edge (column 192) falls at 144; at x4, at 36.
    from PIL import Image

    array = np.zeros((300, 400, 3), dtype=np.uint8)
    array[:, 200:] = 255
    hr, lr = superres.make_pair(Image.fromarray(array), 4, 288, "resize_center", "pil")
    assert hr.shape == (3, 288, 288) and lr.shape == (3, 72, 72)
    assert hr[:, :, :142].max() < 0.01 and hr[:, :, 146:].min() > 0.99
    assert hr[:, :, 143].mean() < 0.5 < hr[:, :, 144].mean()  # the edge between columns 143 and 144
    assert lr[:, :, :33].max() < 0.02 and lr[:, :, 39:].min() > 0.98
    assert lr[:, :, 35].mean() < 0.5 < lr[:, :, 36].mean()    # and between 35 and 36
    _, no_lr = superres.make_pair(Image.fromarray(array), 4, 288, "resize_center", "torch")
    assert no_lr is None  # "torch": degraded on the training device
    whole, whole_lr = superres.make_pair(Image.fromarray(array[:299, :398]), 8, 288, "whole", "pil")
    assert whole.shape == (3, 296, 392) and whole_lr.shape == (3, 37, 49)


def test_coco_sample_is_seeded_and_random_crops_skip_small_images(root):
    a = pairs(root, count=6, seed=1, crop_mode="random")
    b = pairs(root, count=6, seed=1, crop_mode="random")
    c = pairs(root, count=6, seed=2, crop_mode="random")
    assert a.names == b.names and a.names != c.names  # the seed decides the sample
    assert sorted(a.names) != a.names  # drawn at random, not the first names in order
    assert a.skipped_small == 3 and len(a) == 6  # 3 of the 12 fixture images are 80x88
    hr, lr = a[0]
    assert hr.shape == (3, 96, 96) and lr.shape == (3, 24, 24) and 0 <= hr.min() and hr.max() <= 1
    assert len(pairs(root, count=9, crop_mode="random")) == 9
    with pytest.raises(ValueError, match="only 9 of at least 96 px"):  # a short sample is an error, not a surprise
        pairs(root, count=10, crop_mode="random")
    # the authors' resize_center resizes small images up rather than skipping them
    every = pairs(root, count=12)
    assert len(every) == 12 and every.skipped_small == 0 and every[0][0].shape == (3, 96, 96)
    assert pairs(root, count=2, degradation="torch")[0].shape == (3, 96, 96)


def test_cached_pairs_hold_the_decoded_pairs(root, tmp_path):
    source = pairs(root, "val", count=3, crop=64)
    cached = superres.CachedPairs(source, tmp_path / "cache")
    assert len(cached) == 3
    for got, want in zip(cached[1], source[1]):
        torch.testing.assert_close(got, want, atol=0.5 / 255, rtol=0)
    again = superres.CachedPairs(source, tmp_path / "cache")  # reused, not rebuilt
    assert all(torch.equal(x, y) for x, y in zip(again[2], cached[2]))
    with pytest.raises(ValueError, match="cannot be cached"):
        superres.CachedPairs(pairs(root, "val", count=3, crop=64, crop_mode="random"), tmp_path)


def test_test_images_are_whole_and_cropped_to_a_multiple_of_the_scale(root):
    for scale in (4, 8):
        images = superres.test_images(root, "Set14", scale, 288, "whole", "pil")
        assert len(images) == 3
        for _, hr, lr in images:
            assert hr.shape[1] % scale == 0 and hr.shape[2] % scale == 0 and lr.shape[1] * scale == hr.shape[1]
    released = superres.test_images(root, "Set14", 4, 64, "resize_center", "pil")
    assert all(hr.shape == (3, 64, 64) and lr.shape == (3, 16, 16) for _, hr, lr in released)


def test_missing_data_names_the_download_command(tmp_path, root):
    with pytest.raises(FileNotFoundError, match="dplib data download superres"):
        pairs(tmp_path)
    with pytest.raises(FileNotFoundError, match="dplib data download superres"):
        superres.test_images(tmp_path, "Set5", 4, 288, "whole", "pil")
    (root / "coco" / "train2014").rename(root / "coco" / "moved")
    try:
        with pytest.raises(FileNotFoundError, match="sampled COCO train images"):
            pairs(root, count=4)
    finally:
        (root / "coco" / "moved").rename(root / "coco" / "train2014")


def test_corrupt_image_is_named(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match="broken.png"):
        superres.read_image(path)


def test_download_from_replicas_of_the_hosts_fetches_the_runs_sample(tmp_path, http_server, monkeypatch):
    replica = Replica(http_server)
    host(monkeypatch, replica.coco(train=20, val=6), replica.edsr_benchmark())
    http_server.drop_after["annotations/annotations_trainval2014.zip"] = 300
    needs = superres.needs(seed=42, train_images=5, val_images=2, crop=288, train_crop="resize_center")
    target = superres.download(tmp_path / "data", needs, workers=2, progress=False)
    expected, _ = superres.sample_coco(target, "train", 5, 42, 0)
    assert sorted(p.name for p in (target / "coco" / "train2014").iterdir()) == sorted(expected)  # the sample only
    assert sorted(p.name for p in (target / "coco" / "annotations").iterdir()) == [
        "captions_train2014.json", "captions_val2014.json"]  # only the captions of the zip's six members
    assert len(pairs(target, count=5, crop=288, seed=42)) == 5
    for name, count in superres.TEST_SET_SIZES.items():  # 5, 14, 100, from benchmark/<set>/HR only
        assert len(superres.test_images(target, name, 4, 288, "whole", "pil")) == count
    assert not (target / ".downloads").exists()  # no archive or staging folder left
    requests = len(http_server.requests)
    superres.download(target, needs, progress=False)
    assert len(http_server.requests) == requests  # everything in place: nothing fetched again
    # another grid's sample (random crops: images of at least 288 px) adds what it lacks
    random = superres.needs(seed=42, train_images=5, val_images=2, crop=288, train_crop="random")
    superres.download(target, random, progress=False)
    assert superres.verify(target, random, full=True) == [] and superres.verify(target, needs) == []


def test_verify_names_missing_sampled_images_and_a_short_test_set(tmp_path, http_server, monkeypatch):
    replica = Replica(http_server)
    host(monkeypatch, replica.coco(train=20, val=6), replica.edsr_benchmark())
    needs = superres.needs(seed=0, train_images=5, val_images=2, crop=96, train_crop="resize_center")
    target = superres.download(tmp_path / "data", needs, progress=False)
    name = superres.sample_coco(target, "train", 5, 0, 0)[0][0]
    (target / "coco" / "train2014" / name).unlink()
    next((target / "Set14").iterdir()).unlink()
    other = superres.needs(seed=1, train_images=5, val_images=2, crop=96, train_crop="resize_center")
    problems = superres.verify(target, needs)
    assert f"COCO train2014: 1 of the 5 sampled images (e.g. {name})" in problems
    assert "Set14: 13 of its 14 images" in problems
    assert any(p.startswith("COCO train2014:") for p in superres.verify(target, other))  # another seed: not there



@pytest.mark.parametrize("width, height", [(291, 288), (295, 300), (400, 301), (289, 303)])
def test_the_centre_window_is_torchvisions_center_crop(width, height):
    """The released pairs come from torchvision's CenterCrop, whose offset is
    int(round((w - side) / 2)) (halves to even): one pixel off a floor where w - side is 3 mod 4."""
    import torchvision.transforms as T
    from PIL import Image

    array = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    assert np.array_equal(np.asarray(superres._center(image, 288)), np.asarray(T.CenterCrop(288)(image)))


def test_asking_for_more_images_than_the_split_lists_is_one_clear_error(tmp_path):
    root = superres.write_fixture(tmp_path / "sr", train=4, validation=2)
    with pytest.raises(ValueError, match="asked for 3 COCO val images but the annotations list only 2: give a "
                                         r"smaller count \(train_images / val_images\)"):
        pairs(root, split="val", count=3)
