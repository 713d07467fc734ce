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
                 "clamp_scope": "clamp_scope", "trunk_mode": "trunk_mode", "lin_trunk_mode": "lin_trunk_mode",
                 "forward_passes": "forward_passes", "subsets": "train_subsets", "weights": "weights", "seed": "seed",
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


# ----- the released code's switches (issue 34): each value runs, and does what it says -----------

ONE_STEP = dict(lr=1e-3, batch_size=1000, betas=(0.5, 0.999), constant_epochs=1, decay_epochs=0, dropout=0.0)


def test_the_released_clamp_timing_leaves_the_last_update_unclamped(planted, monkeypatch):
    """One Adam step by hand: the released code clamps between the forward and the update
    (Lightning's on_before_zero_grad), so final = clamp(w0) - step; after_step gives clamp(w0 - step)."""
    from dplib import calibration

    w0 = torch.tensor([-0.5, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # hand-built: negatives and zeros
    monkeypatch.setattr(calibration, "_initial_weights", lambda metric, generator: nn.ParameterDict(
        {"early": nn.Parameter(w0.clone())}))
    finals = {clamp: calibrate(PLANTED, "early", planted, variant="lin", recipe=ONE_STEP, clamp=clamp, weights=None,
                               progress=False)[0].channel_weights["early"] for clamp in ("before_update", "after_step")}
    # the gradient by hand: the head as _fit seeds it, Eq. 1 with w0 over every training triplet
    metric = PerceptualSimilarity(PLANTED, "early", weights=None)
    dataset = calibration.training_set(planted)
    items = [dataset[i] for i in range(len(dataset))]
    ref, p0, p1 = (torch.stack([item[k] for item in items]) for k in ("ref", "p0", "p1"))
    judge = torch.tensor([float(item["judge"]) for item in items])
    torch.manual_seed(0)
    head = RankingHead()
    w = nn.Parameter(w0.clone())
    with torch.no_grad():
        z = {k: metric.normalize(metric.network(x)["early"]) for k, x in (("ref", ref), ("p0", p0), ("p1", p1))}
    d0 = ((z["ref"] - z["p0"]).pow(2) * w.view(1, -1, 1, 1)).sum(1).mean(dim=(1, 2))
    d1 = ((z["ref"] - z["p1"]).pow(2) * w.view(1, -1, 1, 1)).sum(1).mean(dim=(1, 2))
    nn.functional.binary_cross_entropy(head(d0, d1), judge).backward()
    g = w.grad
    step = 1e-3 * g / (g.abs() + 1e-8)  # Adam's first step: the bias-corrected moments are g and g^2
    torch.testing.assert_close(finals["before_update"], w0.clamp(min=0) - step, rtol=0, atol=1e-6)
    torch.testing.assert_close(finals["after_step"], (w0 - step).clamp(min=0), rtol=0, atol=1e-6)
    pushed_down = (w0 <= 0) & (g > 0)
    assert pushed_down.any() and (finals["before_update"][pushed_down] < 0).all()  # unclamped at the end
    assert (finals["after_step"] >= 0).all()


@pytest.mark.parametrize("variant", ["lin", "tune", "scratch"])
def test_dplib_calibrate_with_the_released_clamp_runs_for_every_variant(tmp_path, variant):
    """The switch that crashed (autograd's in-place error) runs for lin on the maps, tune and scratch."""
    from dplib.run.cli import main

    root = bapps.write_fixture(tmp_path / "bapps", patches_per_subset=4)
    out = tmp_path / f"{variant}.pt"
    assert main(["calibrate", "alexnet", "--points", "mid", "--bapps", str(root), "--out", str(out), "--weights",
                 "none", "--clamp", "before_update", "--variant", variant, "--epochs", "1", "--device", "cpu"]) == 0
    assert torch.load(out, weights_only=True)["recipe"]["clamp"] == "before_update"


BN_NET = "conv_bn_for_passes"


def conv_bn(weights, seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))


if BN_NET not in REGISTRY:
    register_architecture(BN_NET, conv_bn, {"early": 1}, children_of="")


def test_separate_and_shared_forward_passes_give_batch_norm_the_statistics_each_one_says(tmp_path):
    """tune in train mode, one step over 4 x 3 training triplets: the released four passes
    (ref, p0, ref, p1) move the running mean four times, each by its own 12-image batch; the
    shared pass once, by the 36 images together. Hand-computed from the network's first conv."""
    root = bapps.write_fixture(tmp_path / "bapps", patches_per_subset=4)
    from dplib.lossnets import IMAGENET_MEAN, IMAGENET_STD

    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    dataset = {k: (v - mean) / std for k, v in training_set_items(root).items()}  # B1's input: ImageNet-normalised
    conv = conv_bn(None, 0)[0]  # the initial weights: the same builder and seed
    with torch.no_grad():
        means = {k: conv(dataset[k]).mean(dim=(0, 2, 3)) for k in ("ref", "p0", "p1")}
    expected = {"separate": torch.zeros(4), "shared": 0.1 * conv(torch.cat([dataset[k] for k in ("ref", "p0", "p1")])
                                                                ).mean(dim=(0, 2, 3)).detach()}
    for k in ("ref", "p0", "ref", "p1"):
        expected["separate"] = 0.9 * expected["separate"] + 0.1 * means[k]
    for forward_passes, tracked in (("separate", 4), ("shared", 1)):
        metric, _ = calibrate(BN_NET, "early", root, variant="tune", recipe=ONE_STEP, weights=None, limit=4,
                              forward_passes=forward_passes, progress=False)
        bn = next(m for m in metric.network.modules() if isinstance(m, nn.BatchNorm2d))
        torch.testing.assert_close(bn.running_mean, expected[forward_passes], rtol=1e-5, atol=1e-6)
        assert int(bn.num_batches_tracked) == tracked
    # in eval mode the two are the same numbers
    runs = [calibrate(BN_NET, "early", root, variant="tune", recipe=ONE_STEP, weights=None, limit=4,
                      forward_passes=passes, trunk_mode="eval", progress=False)[0] for passes in ("separate", "shared")]
    for a, b in zip(*(r.state_dict().values() for r in runs)):
        torch.testing.assert_close(a, b)


def training_set_items(root):
    from dplib import calibration

    dataset = calibration.training_set(root, limit=4)
    items = [dataset[i] for i in range(len(dataset))]
    return {k: torch.stack([item[k] for item in items]) for k in ("ref", "p0", "p1")}


def test_lin_trunk_mode_train_lets_the_frozen_networks_statistics_drift_as_released(tmp_path):
    root = bapps.write_fixture(tmp_path / "bapps", patches_per_subset=4)
    start = conv_bn(None, 0)[1].running_mean.clone()
    for lin_trunk_mode, moves in (("eval", False), ("train", True)):
        metric, record = calibrate(BN_NET, "early", root, variant="lin", recipe=ONE_STEP, weights=None, limit=4,
                                   lin_trunk_mode=lin_trunk_mode, progress=False)
        bn = next(m for m in metric.network.modules() if isinstance(m, nn.BatchNorm2d))
        assert (not torch.equal(bn.running_mean, start)) == moves
        assert record["recipe"]["lin_trunk_mode"] == lin_trunk_mode
        conv = next(m for m in metric.network.modules() if isinstance(m, nn.Conv2d))
        torch.testing.assert_close(conv.weight, conv_bn(None, 0)[0].weight)  # frozen either way
    with pytest.raises(ValueError, match="lin_cache needs fixed features"):
        calibrate(BN_NET, "early", root, variant="lin", lin_cache=True, lin_trunk_mode="train", weights=None)


def test_the_lpips_trainers_clamp_scope_clamps_the_networks_1x1_convolutions_too(tmp_path):
    """lpips's clamp_weights clamps every module with a 1x1 kernel: SqueezeNet's Fire squeeze and
    expand1x1 convolutions, even in lin. "channel_weights" (the released code) leaves them."""
    root = bapps.write_fixture(tmp_path / "bapps", patches_per_subset=4)
    for clamp_scope in ("channel_weights", "every_1x1"):
        metric, record = calibrate("squeezenet1_1", "late", root, variant="lin", recipe=ONE_STEP, weights=None,
                                   limit=4, clamp_scope=clamp_scope, progress=False)
        ones = [m.weight for m in metric.network.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
        assert len(ones) == 16  # 8 Fire modules to relu7 ("late"): squeeze and expand1x1 each
        assert all((w >= 0).all() for w in ones) == (clamp_scope == "every_1x1"), clamp_scope
        assert (metric.channel_weights["late"] >= 0).all() and record["recipe"]["clamp_scope"] == clamp_scope
