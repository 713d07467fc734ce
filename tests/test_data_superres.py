"""dplib.data.superres: degradation, the real layout, and downloads from a local server."""

import io
import tarfile
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from dplib.data import superres


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
    hr, lr = superres.make_pair(Image.fromarray(array), scale=4, crop=288, crop_mode="resize_center")
    assert hr.shape == (3, 288, 288) and lr.shape == (3, 72, 72)
    assert hr[:, :, :142].max() < 0.01 and hr[:, :, 146:].min() > 0.99
    assert hr[:, :, 143].mean() < 0.5 < hr[:, :, 144].mean()  # the edge between columns 143 and 144
    assert lr[:, :, :33].max() < 0.02 and lr[:, :, 39:].min() > 0.98
    assert lr[:, :, 35].mean() < 0.5 < lr[:, :, 36].mean()    # and between 35 and 36
    _, no_lr = superres.make_pair(Image.fromarray(array), 4, crop=288, crop_mode="resize_center", degradation="torch")
    assert no_lr is None  # "torch": degraded on the training device
    whole, whole_lr = superres.make_pair(Image.fromarray(array[:299, :398]), 8, crop_mode="whole")
    assert whole.shape == (3, 296, 392) and whole_lr.shape == (3, 37, 49)


def test_coco_sample_is_seeded_and_random_crops_skip_small_images(root):
    a = superres.CocoPairs(root, "train", count=6, crop=96, seed=1, crop_mode="random")
    b = superres.CocoPairs(root, "train", count=6, crop=96, seed=1, crop_mode="random")
    c = superres.CocoPairs(root, "train", count=6, crop=96, seed=2, crop_mode="random")
    assert a.names == b.names and a.names != c.names  # the seed decides the sample
    assert sorted(a.names) != a.names  # drawn at random, not the first names in order
    assert a.skipped_small == 3 and len(a) == 6  # 3 of the 12 fixture images are 80x88
    hr, lr = a[0]
    assert hr.shape == (3, 96, 96) and lr.shape == (3, 24, 24) and 0 <= hr.min() and hr.max() <= 1
    assert len(superres.CocoPairs(root, "train", count=100, crop=96, crop_mode="random")) == 9
    # the authors' resize_center resizes small images up rather than skipping them
    every = superres.CocoPairs(root, "train", count=100, crop=96)
    assert len(every) == 12 and every.skipped_small == 0 and every[0][0].shape == (3, 96, 96)
    assert superres.CocoPairs(root, "train", count=2, crop=96, degradation="torch")[0].shape == (3, 96, 96)


def test_cached_pairs_hold_the_decoded_pairs(root, tmp_path):
    source = superres.CocoPairs(root, "val", count=3, scale=4, crop=64, seed=0)
    cached = superres.CachedPairs(source, tmp_path / "cache")
    assert len(cached) == 3
    for got, want in zip(cached[1], source[1]):
        torch.testing.assert_close(got, want, atol=0.5 / 255, rtol=0)
    again = superres.CachedPairs(source, tmp_path / "cache")  # reused, not rebuilt
    assert all(torch.equal(x, y) for x, y in zip(again[2], cached[2]))
    with pytest.raises(ValueError, match="cannot be cached"):
        superres.CachedPairs(superres.CocoPairs(root, "val", count=3, crop=64, crop_mode="random"), tmp_path)


def test_test_images_are_whole_and_cropped_to_a_multiple_of_the_scale(root):
    for scale in (4, 8):
        images = superres.test_images(root, "Set14", scale)
        assert len(images) == 3
        for _, hr, lr in images:
            assert hr.shape[1] % scale == 0 and hr.shape[2] % scale == 0 and lr.shape[1] * scale == hr.shape[1]
    released = superres.test_images(root, "Set14", 4, crop=64, crop_mode="resize_center")
    assert all(hr.shape == (3, 64, 64) and lr.shape == (3, 16, 16) for _, hr, lr in released)


def test_missing_data_names_the_download_command(tmp_path, root):
    with pytest.raises(FileNotFoundError, match="dplib data download superres"):
        superres.CocoPairs(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="dplib data download superres"):
        superres.test_images(tmp_path, "Set5", 4)
    (root / "coco" / "train2014").rename(root / "coco" / "moved")
    try:
        with pytest.raises(FileNotFoundError, match="sampled COCO train images"):
            superres.CocoPairs(root, "train", count=4, crop=96)
    finally:
        (root / "coco" / "moved").rename(root / "coco" / "train2014")


def test_corrupt_image_is_named(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match="broken.png"):
        superres.read_image(path)


def test_download_only_what_is_needed_from_a_local_server(tmp_path, http_server, root):
    annotations = io.BytesIO()
    with zipfile.ZipFile(annotations, "w") as z:
        for split in ("train", "val"):
            z.write(root / "coco" / "annotations" / f"captions_{split}2014.json", f"annotations/captions_{split}2014.json")
    http_server.files["annotations_trainval2014.zip"] = annotations.getvalue()
    for split in ("train", "val"):
        for image in (root / "coco" / f"{split}2014").iterdir():
            http_server.files[f"{split}2014/{image.name}"] = image.read_bytes()
    benchmark = io.BytesIO()
    with tarfile.open(fileobj=benchmark, mode="w") as t:
        for ours, theirs in (("Set5", "Set5"), ("Set14", "Set14"), ("BSD100", "B100")):
            t.add(root / ours, arcname=f"benchmark/{theirs}/HR")
    http_server.files["benchmark.tar"] = benchmark.getvalue()
    http_server.drop_after["train2014/COCO_train2014_000000000002.jpg"] = 100

    target = superres.download(tmp_path / "data", count=5, validation=2, min_size=288, base_url=http_server.url,
                               annotations_url=http_server.url + "annotations_trainval2014.zip",
                               benchmark_url=http_server.url + "benchmark.tar", workers=2)
    assert len(list((target / "coco" / "train2014").iterdir())) == 5  # the sample only, not the 12
    assert len(superres.CocoPairs(target, "train", count=5, crop=288, crop_mode="random")) == 5
    assert len(superres.CocoPairs(target, "val", count=2, crop=288, crop_mode="random")) == 2
    for name in superres.TEST_SETS:
        assert len(superres.test_images(target, name, 4)) == 3
    requests = len(http_server.requests)
    superres.download(tmp_path / "data", count=5, validation=2, min_size=288, base_url=http_server.url,
                      annotations_url=http_server.url + "annotations_trainval2014.zip",
                      benchmark_url=http_server.url + "benchmark.tar")
    assert len(http_server.requests) == requests  # everything in place: nothing fetched again
