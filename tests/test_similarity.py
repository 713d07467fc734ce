"""dplib.similarity against the lpips package: its calibrated metric (from_lpips) equals
lpips.LPIPS for AlexNet, VGG16 and SqueezeNet, versions 0.1 and 0.0, distances and spatial
maps, on the same trunk weights and inputs; the baseline equals Eq. 1; calibration files
round-trip."""

import pytest
import torch

from dplib import LossNetwork, PerceptualSimilarity
from dplib.losses import perceptual_distance
from dplib.lossnets import REGISTRY, register_points
from dplib.similarity import LPIPS_NETWORKS, load_calibration, save_calibration


def lpips_and_ours(net, version):
    """lpips.LPIPS with its shipped lin weights on a random trunk, and from_lpips on a copy of
    that trunk (the ImageNet trunk cannot be downloaded here; the arithmetic is the same)."""
    import lpips

    torch.manual_seed(0)
    reference = lpips.LPIPS(net=net, version=version, pnet_rand=True, verbose=False).eval()
    ours = PerceptualSimilarity.from_lpips(net, version=version, weights=None)
    trunk = {name: module for s in reference.net.children() for name, module in s.named_children()}
    copied = 0
    for index, layer in enumerate(ours.network.layers):
        if str(index) in trunk:
            layer.load_state_dict(trunk[str(index)].state_dict())
            copied += 1
    assert copied == len(ours.network.layers)  # every child of the trunk came across
    return reference, ours


@pytest.mark.parametrize("version", ["0.1", "0.0"])
@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_from_lpips_equals_the_lpips_package(net, version):
    reference, ours = lpips_and_ours(net, version)
    generator = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 3, 64, 64, generator=generator), torch.rand(3, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = reference(x, y, normalize=True).flatten()                   # (N, 1, 1, 1) -> (N,)
        expected_maps = lpips_spatial(net, version, reference)(x, y, normalize=True)
        got, maps = ours(x, y), ours(x, y, spatial=True)
    assert got.shape == (3,) and maps.shape == (3, 1, 64, 64)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(maps, expected_maps, rtol=0, atol=1e-6)
    assert (got > 0).all() and len(ours.points) == len(reference.chns)


def lpips_spatial(net, version, reference):
    """The same lpips metric with spatial=True (its maps upsampled to the input's size)."""
    import lpips

    spatial = lpips.LPIPS(net=net, version=version, pnet_rand=True, spatial=True, verbose=False).eval()
    spatial.load_state_dict(reference.state_dict())
    return spatial


def test_from_lpips_reads_the_weights_lpips_ships():
    import lpips

    ours = PerceptualSimilarity.from_lpips("vgg", weights=None)
    shipped = torch.load(lpips.__path__[0] + "/weights/v0.1/vgg.pth", map_location="cpu", weights_only=True)
    assert list(ours.points) == ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    for k, point in enumerate(ours.points):
        torch.testing.assert_close(ours.channel_weights[point].data, shipped[f"lin{k}.model.1.weight"].flatten())
    with pytest.raises(ValueError, match="net alex, vgg or squeeze and version '0.1' or '0.0'"):
        PerceptualSimilarity.from_lpips("resnet")


def test_the_baseline_is_eq_1_at_each_point():
    metric = PerceptualSimilarity("alexnet", ("early", "late"), weights=None)
    network = LossNetwork("alexnet", ("early", "late"), weights=None)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = perceptual_distance(network(x), network(y))
        torch.testing.assert_close(metric(x, y), expected, rtol=1e-6, atol=1e-7)
        # spatial maps average back to the distance (bilinear upsampling of an h x w map to a
        # multiple of it keeps its mean only approximately, so compare one point at its own size)
        maps = metric.point_maps(x, y)["late"]
        torch.testing.assert_close(maps.mean(dim=(1, 2, 3)), perceptual_distance(network(x), network(y),
                                                                                 point_weights={"early": 0, "late": 1}))


def test_the_input_contract_is_checked():
    metric = PerceptualSimilarity("squeezenet1_1", "early", weights=None)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metric(torch.rand(1, 3, 32, 32) * 255, torch.rand(1, 3, 32, 32) * 255)
    with pytest.raises(ValueError, match="differ in shape"):
        metric(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 48, 48))


def test_named_points_beyond_the_study_share_a_node_and_stay_out_of_the_study():
    network = LossNetwork("alexnet", ("early", "relu1", "relu4"), weights=None)  # early and relu1: features.1
    features = network(torch.rand(1, 3, 64, 64))
    assert list(features) == ["early", "relu1", "relu4"] and torch.equal(features["early"], features["relu1"])
    assert REGISTRY["alexnet"].point_names == ("early", "semi_early", "mid", "late")  # the grid's, the attributes'
    assert set(LPIPS_NETWORKS["alex"][1]) <= set(REGISTRY["alexnet"].all_points)
    with pytest.raises(ValueError, match="already has points named"):
        register_points("alexnet", {"early": 4})


def test_a_calibration_file_round_trips_and_says_what_it_is(tmp_path):
    metric = PerceptualSimilarity("squeezenet1_1", ("early", "mid"), weights=None)
    metric.channel_weights = torch.nn.ParameterDict({p: torch.nn.Parameter(torch.rand(c), requires_grad=False)
                                                     for p, c in (("early", 64), ("mid", 256))})
    metric.variant = "lin"
    path = save_calibration(tmp_path / "m.pt", metric, recipe={"name": "released"}, scores={"2afc": 0.7})
    record = load_calibration(path)
    assert record["arch"] == "squeezenet1_1" and record["points"] == ["early", "mid"] and record["variant"] == "lin"
    assert record["scores"] == {"2afc": 0.7} and record["network"] is None and "torch" in record["versions"]
    loaded = PerceptualSimilarity("squeezenet1_1", ("early", "mid"), calibration=path, weights=None)
    x, y = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, y), metric(x, y), rtol=0, atol=0)
    with pytest.raises(ValueError, match="is for squeezenet1_1 at early/mid, not squeezenet1_1 at late"):
        PerceptualSimilarity("squeezenet1_1", "late", calibration=path, weights=None)
    torch.save({"lin0.model.1.weight": torch.ones(1, 64, 1, 1)}, tmp_path / "lpips_like.pt")
    with pytest.raises(ValueError, match="not a dplib calibration file"):
        load_calibration(tmp_path / "lpips_like.pt")
    with pytest.raises(FileNotFoundError, match="dplib calibrate"):
        load_calibration(tmp_path / "absent.pt")


# ----- `dplib similarity A B` ------------------------------------------------------------------------

def _folders(tmp_path, names=("a.png", "b.png", "c.png")):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    for name in names:
        image = rng.integers(0, 256, (48, 72, 3), dtype=np.uint8)
        Image.fromarray(image).save(first / name)
        Image.fromarray(np.clip(image.astype(int) + rng.integers(-40, 40, image.shape), 0, 255).astype(np.uint8)
                        ).save(second / name)
    return first, second


def _read_csv(path):
    import csv

    with open(path, newline="") as f:
        return {row["name"]: float(row["distance"]) for row in csv.DictReader(f)}


def _metric_on(metric, first, second, name):
    from dplib.data.files import read_image

    with torch.no_grad():
        return float(metric(read_image(first / name)[None], read_image(second / name)[None])[0])


def test_dplib_similarity_on_two_folders_equals_perceptual_similarity(tmp_path):
    from dplib.run.cli import main

    first, second = _folders(tmp_path)
    out = tmp_path / "d.csv"
    assert main(["similarity", str(first), str(second), "--arch", "squeezenet1_1", "--points", "early", "mid",
                 "--weights", "none", "--out", str(out), "--quiet"]) == 0
    rows = _read_csv(out)
    metric = PerceptualSimilarity("squeezenet1_1", ("early", "mid"), weights=None)
    assert list(rows) == ["a.png", "b.png", "c.png"]
    for name, value in rows.items():
        assert value == pytest.approx(_metric_on(metric, first, second, name), rel=1e-6)
    # lpips's own metric, and a calibration file, on two single images
    assert main(["similarity", str(first / "b.png"), str(second / "b.png"), "--lpips", "alex", "--weights", "none",
                 "--out", str(out), "--quiet"]) == 0
    lpips_metric = PerceptualSimilarity.from_lpips("alex", weights=None)
    assert _read_csv(out)["b.png"] == pytest.approx(_metric_on(lpips_metric, first, second, "b.png"), rel=1e-6)
    calibration = tmp_path / "alex.pt"
    save_calibration(calibration, lpips_metric)
    assert main(["similarity", str(first), str(second), "--arch", "alexnet", "--points", *lpips_metric.points,
                 "--calibration", str(calibration), "--weights", "none", "--out", str(out), "--quiet"]) == 0
    calibrated = PerceptualSimilarity("alexnet", lpips_metric.points, calibration=calibration, weights=None)
    assert _read_csv(out)["c.png"] == pytest.approx(_metric_on(calibrated, first, second, "c.png"), rel=1e-6)


def test_dplib_similarity_refuses_mismatched_folders_and_unreadable_images_in_one_line(tmp_path, capsys):
    from dplib.run.cli import main

    first, second = _folders(tmp_path)
    (second / "d.png").write_bytes((second / "a.png").read_bytes())
    assert main(["similarity", str(first), str(second), "--weights", "none"]) == 2
    err = capsys.readouterr().err
    assert err == f"dplib: error: the folders do not hold the same image names: 1 only in {second} (e.g. d.png)\n"
    (second / "d.png").unlink()
    (second / "c.png").write_bytes(b"not a png")
    assert main(["similarity", str(first), str(second), "--weights", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dplib: error: {second / 'c.png'} is not an image dplib can read") and err.count("\n") == 1
    assert main(["similarity", str(first), str(second / "a.png"), "--weights", "none"]) == 2
    assert "give two images or two folders" in capsys.readouterr().err
