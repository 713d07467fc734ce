"""dplib.data.superres: degradation, the real layout, and downloads from a local server."""

import io
import tarfile
import zipfile

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


def test_coco_sample_is_seeded_and_skips_small_images(root):
    a = superres.CocoCrops(root, "train", count=6, crop=96, seed=1)
    b = superres.CocoCrops(root, "train", count=6, crop=96, seed=1)
    c = superres.CocoCrops(root, "train", count=6, crop=96, seed=2)
    assert a.names == b.names and sorted(a.names) != a.names or a.names != c.names
    assert a.skipped_small == 3 and len(a) == 6  # 3 of the 12 fixture images are 80x88
    assert a[0].shape == (3, 96, 96) and 0 <= a[0].min() and a[0].max() <= 1
    assert len(superres.CocoCrops(root, "train", count=100, crop=96)) == 9


def test_cached_crops_hold_the_decoded_crops(root, tmp_path):
    source = superres.CocoCrops(root, "val", count=3, crop=64, seed=0, center=True)
    cached = superres.CachedCrops(source, tmp_path / "cache.u8")
    assert len(cached) == 3
    torch.testing.assert_close(cached[1], source[1], atol=0.5 / 255, rtol=0)
    again = superres.CachedCrops(source, tmp_path / "cache.u8")  # reused, not rebuilt
    assert torch.equal(again[2], cached[2])


def test_test_images_are_cropped_to_a_multiple_of_the_scale(root):
    for scale in (4, 8):
        images = superres.test_images(root, "Set14", scale)
        assert len(images) == 3
        assert all(i.shape[1] % scale == 0 and i.shape[2] % scale == 0 for _, i in images)


def test_missing_data_names_the_download_command(tmp_path, root):
    with pytest.raises(FileNotFoundError, match="dplib data download superres"):
        superres.CocoCrops(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="dplib data download superres"):
        superres.test_images(tmp_path, "Set5", 4)
    (root / "coco" / "train2014").rename(root / "coco" / "moved")
    try:
        with pytest.raises(FileNotFoundError, match="sampled COCO train images"):
            superres.CocoCrops(root, "train", count=4, crop=96)
    finally:
        (root / "coco" / "moved").rename(root / "coco" / "train2014")


def test_corrupt_image_is_named(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match="broken.png"):
        superres.load_image(path)


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
    assert len(superres.CocoCrops(target, "train", count=5, crop=288)) == 5
    assert len(superres.CocoCrops(target, "val", count=2, crop=288)) == 2
    for name in superres.TEST_SETS:
        assert len(superres.test_images(target, name, 4)) == 3
    requests = len(http_server.requests)
    superres.download(tmp_path / "data", count=5, validation=2, min_size=288, base_url=http_server.url,
                      annotations_url=http_server.url + "annotations_trainval2014.zip",
                      benchmark_url=http_server.url + "benchmark.tar")
    assert len(http_server.requests) == requests  # everything in place: nothing fetched again
