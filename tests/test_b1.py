"""dplib.benchmarks.b1: Benchmark 1's distances and scores."""

import numpy as np
import pytest
import torch

from conftest import LPIPS_LAYERS, lpips_baseline_and_ours
from dplib.benchmarks import b1
from dplib.data.bapps import TwoAFCDataset
from dplib.lossnets import POINTS, LossNetwork
from dplib.metrics import two_afc


@pytest.mark.parametrize("net_name", ["alex", "squeeze"])
def test_distances_equal_lpips_baseline_per_layer(bapps_root, net_name):
    reference, ours = lpips_baseline_and_ours(net_name)
    dataset = TwoAFCDataset(bapps_root, "traditional")
    distances = b1.pair_distances(ours, dataset, "p0", "p1", reference="ref", batch_size=4)
    batch = torch.stack([dataset[i]["ref"] for i in range(len(dataset))])
    p0 = torch.stack([dataset[i]["p0"] for i in range(len(dataset))])
    with torch.no_grad():
        _, per_layer = reference(batch, p0, retPerLayer=True, normalize=True)
    for index, points in sorted(ours.point_at_layer.items()):
        expected = per_layer[LPIPS_LAYERS[net_name].index(index)].flatten().double().numpy()
        for point in points:
            np.testing.assert_allclose(distances[point][0], expected, rtol=1e-5, atol=1e-7)
    # 2AFC from those distances equals 2AFC from lpips' own
    with torch.no_grad():
        p1 = torch.stack([dataset[i]["p1"] for i in range(len(dataset))])
        _, per_layer_1 = reference(batch, p1, retPerLayer=True, normalize=True)
    index = max(ours.point_at_layer)
    k = LPIPS_LAYERS[net_name].index(index)
    assert two_afc(*distances["late"], dataset.judge) == pytest.approx(
        two_afc(per_layer[k].flatten().numpy(), per_layer_1[k].flatten().numpy(), dataset.judge), abs=1e-12)


def test_a_point_alone_scores_the_same_as_with_the_others(bapps_root, tmp_path):
    together = LossNetwork("resnet18", POINTS, weights=None)
    rows_together = b1.score_rows("resnet18", POINTS, *b1.evaluate(
        together, bapps_root, tmp_path / "all", ["cnn", "color"], ["cnn"], batch_size=5))
    for point in POINTS:
        alone = LossNetwork("resnet18", point, weights=None)
        rows_alone = b1.score_rows("resnet18", (point,), *b1.evaluate(
            alone, bapps_root, tmp_path / point, ["cnn", "color"], ["cnn"], batch_size=3))
        expected = [r for r in rows_together if r["point"] == point]
        assert [(r["score"], r["dataset"]) for r in rows_alone] == [(r["score"], r["dataset"]) for r in expected]
        np.testing.assert_allclose([r["value"] for r in rows_alone], [r["value"] for r in expected], atol=1e-9)


def test_score_rows_mean_and_pooled(bapps_root, tmp_path):
    network = LossNetwork("alexnet", ("early", "late"), weights=None)
    two_afc_distances, jnd_distances = b1.evaluate(network, bapps_root, tmp_path, ["cnn", "deblur"],
                                                   ["traditional", "cnn"])
    rows = {(r["score"], r["dataset"], r["point"]): r["value"] for r in
            b1.score_rows("alexnet", network.points, two_afc_distances, jnd_distances)}
    assert rows[("2afc", "all", "late")] == pytest.approx((rows[("2afc", "cnn", "late")] +
                                                           rows[("2afc", "deblur", "late")]) / 2)
    assert ("jnd_map", "all", "early") in rows and len(rows) == 2 * (3 + 3)


def test_distances_are_cached_and_a_broken_cache_is_recomputed(bapps_root, tmp_path, monkeypatch):
    network = LossNetwork("squeezenet1_1", "early", weights=None)
    first = b1.evaluate(network, bapps_root, tmp_path, ["cnn"], ["cnn"])
    assert sorted(p.name for p in (tmp_path / "distances").iterdir()) == ["2afc_cnn.npz", "jnd_cnn.npz"]
    (tmp_path / "distances" / "jnd_cnn.npz").write_bytes(b"half a file")

    calls = []
    original = b1.pair_distances
    monkeypatch.setattr(b1, "pair_distances", lambda *a, **k: calls.append(a[2:]) or original(*a, **k))
    second = b1.evaluate(network, bapps_root, tmp_path, ["cnn"], ["cnn"])
    assert len(calls) == 1  # only the broken JND file was computed again
    np.testing.assert_array_equal(first[0]["cnn"]["early_d0"], second[0]["cnn"]["early_d0"])
    np.testing.assert_array_equal(first[1]["cnn"]["early"], second[1]["cnn"]["early"])


def test_bad_data_stops_before_any_distance_is_computed(tmp_path, monkeypatch):
    network = LossNetwork("alexnet", "early", weights=None)
    monkeypatch.setattr(b1, "pair_distances", lambda *a, **k: pytest.fail("computed before checking the data"))
    with pytest.raises(FileNotFoundError, match="dplib data download bapps"):
        b1.evaluate(network, tmp_path / "missing", tmp_path, ["cnn"], ["cnn"])


def test_autocast_distances_follow_float32(bapps_root):
    network = LossNetwork("alexnet", POINTS, weights=None)
    dataset = TwoAFCDataset(bapps_root, "cnn")
    exact = b1.pair_distances(network, dataset, "p0", "p1", reference="ref", progress=False)
    for autocast, tolerance in (("float16", 5e-3), ("bfloat16", 5e-2)):
        approximate = b1.pair_distances(network, dataset, "p0", "p1", reference="ref", autocast=autocast,
                                        channels_last=True, progress=False)
        for point in POINTS:
            for a, b in zip(exact[point], approximate[point]):
                assert not np.array_equal(a, b)  # autocast really ran in the lower precision
                np.testing.assert_allclose(b, a, rtol=tolerance)


def test_float16_overflow_is_computed_again_in_float32(bapps_root):
    network = LossNetwork("alexnet", ["late"], weights=None)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(40.0)  # features grow by 40^5 over alexnet's five convolutions: past float16's 65504
    dataset = TwoAFCDataset(bapps_root, "cnn")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        assert not torch.isfinite(network(dataset[0]["ref"][None])["late"]).all()
    exact = b1.pair_distances(network, dataset, "p0", "p1", reference="ref", progress=False)
    overflowing = b1.pair_distances(network, dataset, "p0", "p1", reference="ref", autocast="float16", progress=False)
    for a, b in zip(exact["late"], overflowing["late"]):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("autocast", [True, "fp16", "float64"])
def test_unknown_autocast_is_refused_before_any_work(autocast, tmp_path):
    network = LossNetwork("alexnet", ["early"], weights=None)
    with pytest.raises(ValueError, match="autocast must be False, 'float16' or 'bfloat16'"):
        b1.evaluate(network, tmp_path / "no-data-here", tmp_path / "out", ["cnn"], [], autocast=autocast)
    assert not (tmp_path / "out").exists()


def test_chunks_change_the_speed_not_the_distances(bapps_root):
    network = LossNetwork("vgg11", POINTS, weights=None)
    dataset = TwoAFCDataset(bapps_root, "cnn")
    assert b1.images_per_chunk(network, 64) == b1.CHUNK_BYTES // (64 * 64 * 64 * 4)  # vgg11's 64-channel 64 px maps
    whole = b1.pair_distances(network, dataset, "p0", "p1", reference="ref", batch_size=6, progress=False,
                              device="cpu")
    network._chunk_images[64] = 1  # one patch at a time
    single = b1.pair_distances(network, dataset, "p0", "p1", reference="ref", batch_size=6, progress=False)
    for point in POINTS:
        for a, b in zip(whole[point], single[point]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_calibrated_run_scores_the_saved_metric_and_reuses_it(bapps_root, tmp_path):
    # Each point's calibration is saved; the run's scores are that metric's, as
    # dplib.calibration.score computes them through PerceptualSimilarity (another code path:
    # its 1x1 convolution on the maps, not pair_distances' weighted Eq. 1).
    from dplib.calibration import score
    from dplib.similarity import PerceptualSimilarity, load_calibration

    switches = dict(lin_cache=False, clamp="after_step", clamp_scope="channel_weights", trunk_mode="train",
                    lin_trunk_mode="eval", forward_passes="separate")
    settings = dict(variant="lin", recipe="released", switches=switches,
                    train_subsets=["traditional", "cnn", "mix"], weights=None, normalize_input=True,
                    inception_transform=False, seed=0, limit=4, batch_size=5, progress=False)
    two_afc_d, jnd_d, beyond = b1.evaluate_calibrated("squeezenet1_1", ("early", "late"), bapps_root, tmp_path,
                                                      ["cnn"], ["traditional"], **settings)
    assert beyond == {}  # BAPPS only (issue 35 added the datasets beyond it as a third result)
    rows = {(r["score"], r["dataset"], r["point"]): r["value"]
            for r in b1.score_rows("squeezenet1_1", ("early", "late"), two_afc_d, jnd_d)}
    for point in ("early", "late"):
        record = load_calibration(tmp_path / f"calibration_{point}.pt")
        assert record["variant"] == "lin" and record["data"]["triplets"] == 3 * 4
        metric = PerceptualSimilarity("squeezenet1_1", point, calibration=tmp_path / f"calibration_{point}.pt",
                                      weights=None)
        dataset = TwoAFCDataset(bapps_root, "cnn", limit=4)
        ref, p1 = (torch.stack([dataset[i][k] for i in range(len(dataset))]) for k in ("ref", "p1"))
        with torch.no_grad():
            np.testing.assert_allclose(two_afc_d["cnn"][f"{point}_d1"], metric(ref, p1).double().numpy(), rtol=1e-5)
        expected = score(metric, bapps_root, subsets=["cnn"], jnd_subsets=["traditional"], limit=4)
        assert rows[("2afc", "cnn", point)] == pytest.approx(expected["2afc"]["cnn"], abs=1e-9)
        assert rows[("jnd_map", "traditional", point)] == pytest.approx(expected["jnd_map"]["traditional"], abs=1e-9)
    # a rerun with the same settings loads the files; another recipe trains again
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("calibration_*.pt")}
    b1.evaluate_calibrated("squeezenet1_1", ("early", "late"), bapps_root, tmp_path, ["cnn"], ["traditional"],
                           **settings)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("calibration_*.pt")} == stamps
    b1.evaluate_calibrated("squeezenet1_1", ("early", "late"), bapps_root, tmp_path, ["cnn"], ["traditional"],
                           **{**settings, "recipe": "lpips"})
    assert all(p.stat().st_mtime_ns != stamps[p.name] for p in tmp_path.glob("calibration_*.pt"))
    assert load_calibration(tmp_path / "calibration_late.pt")["recipe"]["name"] == "lpips"
    # and so does another switch (here the shared forward pass): its file records it
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("calibration_*.pt")}
    b1.evaluate_calibrated("squeezenet1_1", ("early", "late"), bapps_root, tmp_path, ["cnn"], ["traditional"],
                           **{**settings, "recipe": "lpips", "switches": {**switches, "forward_passes": "shared"}})
    assert all(p.stat().st_mtime_ns != stamps[p.name] for p in tmp_path.glob("calibration_*.pt"))
    assert load_calibration(tmp_path / "calibration_late.pt")["recipe"]["forward_passes"] == "shared"


def test_a_calibrated_run_reads_the_training_set_too():
    parameters = {"subsets": ["cnn"], "jnd_subsets": [], "train_subsets": ["traditional", "mix"], "datasets": ["bapps"]}
    assert "2afc/train" not in b1.data_needs({**parameters, "variant": "baseline"})["bapps"]
    assert b1.data_needs({**parameters, "variant": "tune"})["bapps"]["2afc/train"] == {"traditional", "mix"}


def test_beyond_bapps_the_scores_are_the_metrics_of_the_distances_and_calibrated_runs_score_them_too(
        bapps_root, tmp_path):
    """Each opinion-score dataset gets SRCC, KRCC and PLCC of its distances (dplib.metrics, tested
    against scipy there), NIGHTS its 2AFC; a calibrated variant is scored on them as well."""
    from dplib import LossNetwork
    from dplib.data import iqa, nights
    from dplib.metrics import krcc, plcc, srcc

    roots = {"kadid10k": iqa.write_fixture(tmp_path / "kadid10k", "kadid10k"),
             "nights": nights.write_fixture(tmp_path / "nights")}
    network = LossNetwork("squeezenet1_1", ("early", "late"), weights=None)
    beyond = b1.evaluate_beyond(network, roots, tmp_path / "run", batch_size=50, progress=False)
    assert len(beyond["kadid10k"]["score"]) == 18 and len(beyond["nights"]["judge"]) == 3
    rows = {(r["score"], r["dataset"], r["point"]): r["value"]
            for r in b1.score_rows("squeezenet1_1", ("early", "late"), {}, {}, beyond)}
    d = beyond["kadid10k"]
    assert rows[("srcc", "kadid10k", "late")] == pytest.approx(srcc(d["late"], d["score"]))
    assert rows[("krcc", "kadid10k", "early")] == pytest.approx(krcc(d["early"], d["score"]))
    assert rows[("plcc", "kadid10k", "late")] == pytest.approx(plcc(d["late"], d["score"]))
    n = beyond["nights"]
    assert rows[("2afc", "nights", "early")] == pytest.approx(two_afc(n["early_d0"], n["early_d1"], n["judge"]))
    switches = dict(lin_cache=True, clamp="after_step", clamp_scope="channel_weights", trunk_mode="train",
                    lin_trunk_mode="eval", forward_passes="shared")
    two_afc_d, jnd_d, calibrated = b1.evaluate_calibrated(
        "squeezenet1_1", ("early",), bapps_root, tmp_path / "calibrated", ["cnn"], [], "lin", "lpips", switches,
        ["traditional"], None, True, False, 0, limit=4, progress=False, roots=roots, batch_size=8)
    assert set(calibrated) == {"kadid10k", "nights"} and len(calibrated["kadid10k"]["early"]) == 4
    assert not np.allclose(calibrated["kadid10k"]["early"], beyond["kadid10k"]["early"][:4])  # its own weights
