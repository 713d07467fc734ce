"""dplib.calibration: LPIPS's lin / tune / scratch training, against the schedule and head
both released trainers wrote, and against a planted signal that only a calibration can find."""

import numpy as np
import pytest
import torch
from torch import nn

from dplib.calibration import RankingHead, calibrate, calibrate_each, lr_factors
from dplib.data import bapps
from dplib.lossnets import REGISTRY, register_architecture
from dplib.metrics import two_afc
from dplib.similarity import PerceptualSimilarity

PLANTED = "planted_channel"


def planted_network(weights, seed):
    """A 1x1 convolution to 8 channels: channel 0 is the red intensity, the others random mixes."""
    generator = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(3, 8, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(8, 3, 1, 1, generator=generator))
        conv.bias.copy_(torch.rand(8, generator=generator) + 0.5)
        conv.weight[0] = torch.tensor([2.0, 0.0, 0.0]).view(3, 1, 1)
    return nn.Sequential(conv)


if PLANTED not in REGISTRY:
    register_architecture(PLANTED, planted_network, {"early": 0}, children_of="")


def channel_distance(metric, a, b, channel=0):
    """The distance people judge by: one channel of the unit-normalised features."""
    with torch.no_grad():
        fa, fb = (metric.normalize(metric.network(x)["early"]) for x in (a, b))
    return (fa[:, channel] - fb[:, channel]).pow(2).mean(dim=(1, 2))


def write_planted_bapps(root, train=240, val=200, seed=0):
    """BAPPS's layout (2afc/{train/<subset>, val/traditional}/{ref,p0,p1,judge}) where the judge
    is 1 when p1 is closer to ref in channel 0 of the planted network's point, else 0."""
    generator = torch.Generator().manual_seed(seed)
    metric = PerceptualSimilarity(PLANTED, "early", weights=None)

    def patches(n):  # smooth 8 x 8 colour fields at 64 px, each channel perturbed by its own amount
        ref = nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=generator), size=64, mode="nearest")
        others = [(ref + torch.randn(n, 3, 1, 1, generator=generator) * 0.3 *
                   torch.rand(n, 3, 64, 64, generator=generator)).clamp(0, 1) for _ in range(2)]
        return ref, *others

    parts = [("train", s, train // len(bapps.TRAIN_SUBSETS)) for s in bapps.TRAIN_SUBSETS] + [("val", "traditional",
                                                                                              val)]
    for split, subset, n in parts:
        ref, p0, p1 = patches(n)
        judge = (channel_distance(metric, ref, p1) < channel_distance(metric, ref, p0)).double().numpy()
        folder = root / "2afc" / split / subset
        for i in range(n):
            for name, image in (("ref", ref[i]), ("p0", p0[i]), ("p1", p1[i])):
                bapps._save_png(image, folder / name / f"{i:06d}.png")
            bapps._save_label(judge[i], folder / "judge" / f"{i:06d}.npy")
    return root


def held_out_2afc(metric, root):
    dataset = bapps.TwoAFCDataset(root, "traditional")
    items = [dataset[i] for i in range(len(dataset))]
    ref, p0, p1 = (torch.stack([item[k] for item in items]) for k in ("ref", "p0", "p1"))
    with torch.no_grad():
        return two_afc(metric(ref, p0).numpy(), metric(ref, p1).numpy(), dataset.judge)


FAST = dict(lr=3e-2, batch_size=24, betas=(0.5, 0.999), constant_epochs=5, decay_epochs=5, dropout=0.0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted_bapps(tmp_path_factory.mktemp("planted"))


@pytest.mark.parametrize("lin_cache", [False, True])
def test_lin_finds_the_planted_channel_and_beats_the_baseline(planted, lin_cache):
    baseline = held_out_2afc(PerceptualSimilarity(PLANTED, "early", weights=None), planted)
    metric, record = calibrate(PLANTED, "early", planted, variant="lin", recipe=FAST, lin_cache=lin_cache,
                               weights=None, progress=False)
    weights = metric.channel_weights["early"]
    assert (weights >= 0).all()                               # the clamp: no negative weight after training
    assert weights.argmax() == 0 and weights[0] > 2 * weights[1:].max()  # it learned whom people listen to
    calibrated = held_out_2afc(metric, planted)
    assert calibrated > baseline + 0.15, (baseline, calibrated)  # stated margin on held-out triplets
    assert [h["lr"] for h in record["history"]] == pytest.approx([3e-2 * f for f in lr_factors(5, 5)])
    assert record["recipe"]["lin_cache"] is lin_cache and record["data"]["triplets"] == 240
    assert not metric.training and not metric.network.training


def test_the_schedule_is_both_released_trainers():
    """5 epochs at the base rate, then a linear decay applied at each epoch's end."""
    assert lr_factors(5, 5) == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    # the released code's scheduler, stepped once per epoch (Lightning's default interval)
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=5),
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=5)],
        milestones=[5])
    released = []
    for _ in range(10):
        released.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert [lr / 1e-3 for lr in released] == pytest.approx(lr_factors(5, 5))
    # lpips's trainer: update_learning_rate(nepoch_decay) after every epoch past nepoch: lr -= lr0 / 5
    lr, lpips = 1e-4, []
    for epoch in range(1, 11):
        lpips.append(lr)
        if epoch > 5:
            lr -= 1e-4 / 5
    assert [v / 1e-4 for v in lpips] == pytest.approx(lr_factors(5, 5))


def test_the_ranking_head_is_lpips_dist2logit():
    import lpips

    reference = lpips.BCERankingLoss().net
    ours = RankingHead()
    ours.load_state_dict(reference.state_dict())
    d0, d1 = torch.rand(7), torch.rand(7)
    expected = reference(d0.view(-1, 1, 1, 1), d1.view(-1, 1, 1, 1)).flatten()
    torch.testing.assert_close(ours(d0, d1), expected)


def test_tune_and_scratch_train_the_network_and_lin_leaves_it(planted):
    start = PerceptualSimilarity(PLANTED, "early", weights=None).network.state_dict()
    runs = {variant: calibrate(PLANTED, "early", planted, variant=variant, recipe=FAST, weights=None, epochs=2,
                               limit=16, progress=False)[0] for variant in ("lin", "tune", "scratch")}
    for variant, metric in runs.items():
        moved = any(not torch.equal(v, start[k]) for k, v in metric.network.state_dict().items())
        assert moved == (variant != "lin"), variant
        assert not metric.network.training and not any(p.requires_grad for p in metric.parameters())
    with pytest.raises(ValueError, match="lin_cache needs a frozen network"):
        calibrate(PLANTED, "early", planted, variant="tune", lin_cache=True, weights=None)
    with pytest.raises(ValueError, match="variant must be one of lin, tune, scratch"):
        calibrate(PLANTED, "early", planted, variant="baseline", weights=None)


def test_each_point_gets_its_own_calibration_from_one_cached_pass(tmp_path):
    root = bapps.write_fixture(tmp_path / "bapps", patches_per_subset=6)
    each = calibrate_each("squeezenet1_1", ("early", "mid"), root, variant="lin", recipe=FAST, lin_cache=True,
                          weights=None, epochs=1, progress=False)
    assert list(each) == ["early", "mid"]
    assert [tuple(m.points) for m, _ in each.values()] == [("early",), ("mid",)]
    assert all(np.isfinite(r["history"][0]["loss"]) for _, r in each.values())


def test_the_defaults_are_the_b1_notebooks():
    # One source per fact: the B1 notebook's parameters cell holds the calibration recipe's
    # defaults; calibrate() and calibrate_each() (the library and `dplib calibrate`) match it.
    import ast
    import inspect
    from pathlib import Path

    import papermill

    notebook = Path(__file__).parents[1] / "notebooks" / "b1_perceptual_similarity.ipynb"
    declared = {name: ast.literal_eval(p["default"]) for name, p in papermill.inspect_notebook(str(notebook)).items()}
    same_name = {"recipe": "calibration_recipe", "lin_cache": "lin_cache", "clamp": "lin_clamp",
                 "trunk_mode": "trunk_mode", "subsets": "train_subsets", "weights": "weights", "seed": "seed",
                 "normalize_input": "normalize_input", "inception_transform": "inception_transform"}
    for function in (calibrate, calibrate_each):
        defaults = {k: v.default for k, v in inspect.signature(function).parameters.items()}
        for ours, theirs in same_name.items():
            value = list(defaults[ours]) if isinstance(defaults[ours], tuple) else defaults[ours]
            assert value == declared[theirs], f"{function.__name__}({ours}=...) is not the notebook's {theirs}"


def test_dplib_calibrate_writes_a_file_the_metric_loads_and_that_scores_bapps(tmp_path):
    from dplib.calibration import score
    from dplib.data import bapps as bapps_data
    from dplib.run.cli import main
    from dplib.similarity import load_calibration

    root = bapps_data.write_fixture(tmp_path / "bapps", patches_per_subset=4)
    out = tmp_path / "out" / "squeeze_early.pt"
    assert main(["calibrate", "squeezenet1_1", "--points", "early", "late", "--bapps", str(root), "--out", str(out),
                 "--weights", "none", "--epochs", "2", "--recipe", "lpips", "--device", "cpu"]) == 0
    record = load_calibration(out)
    assert record["arch"] == "squeezenet1_1" and record["points"] == ["early", "late"] and record["variant"] == "lin"
    assert record["recipe"]["name"] == "lpips" and record["recipe"]["epochs"] == 2
    assert record["data"]["triplets"] == 12 and record["versions"]["torch"] == str(torch.__version__)
    metric = PerceptualSimilarity("squeezenet1_1", ("early", "late"), calibration=out, weights=None)
    assert score(metric, root) == record["scores"]  # the file's 2AFC and JND are the loaded metric's
    assert set(record["scores"]["2afc"]) == set(bapps.TWO_AFC_SUBSETS) | {"all"}
    with pytest.raises(SystemExit):
        main(["calibrate", "squeezenet1_1", "--points", "early", "--bapps", str(root), "--out", str(out),
              "--variant", "baseline"])
