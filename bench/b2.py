"""Benchmark 2 cost: training steps per second and the share of each step spent in the loss
network (vgg16 early / late, squeezenet1_1 early / late), the truncated loss network vs a
full-network forward, the device-hours of the full grid, compiled vs eager steps, data loading
(decode vs cache, and the wait per step), and
what bfloat16 (and float16 on a GPU) changes in the scores of a small training run.

    python bench/b2.py [--device cuda] [--crop 288] [--budget 240] [--precision-steps 40]

The timed steps share --budget seconds (bench/common.interleaved: rounds sized by time, so a
slow CPU measures fewer rounds; --repeat fixes them); the precision comparison trains a fixed
--precision-steps steps and the loading wait 12 steps, outside it.
"""

import argparse
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (add_rounds_arguments, grid_lengths, interleaved, notebook_defaults, precision_changes,  # noqa: E402
                    print_compiled_steps, rounds, rounds_line)

from dplib.benchmarks import b2  # noqa: E402
from dplib.data import superres  # noqa: E402
from dplib.train import adam, fit  # noqa: E402
from dplib.lossnets import LossNetwork, build_classifier  # noqa: E402
from dplib.models import TransformerNet  # noqa: E402

warnings.filterwarnings("ignore")
CONFIGS = [("vgg16", "early"), ("vgg16", "late"), ("squeezenet1_1", "early"), ("squeezenet1_1", "late")]
B2 = notebook_defaults("b2_super_resolution")  # the protocol the bench times
(PAPER_STEPS,), (GRID_RUNS,) = (values.values() for values in grid_lengths("b2"))  # 200K steps, 112 runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--crop", type=int, default=None, help="target size (default: 288 on GPU, 128 on CPU)")
    add_rounds_arguments(parser, budget_s=240)
    parser.add_argument("--workers", type=int, default=4, help="data-loading processes (the notebook's default: 4)")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compiled-step timing")
    parser.add_argument("--precision-steps", type=int, default=40, help="training steps of the precision comparison")
    args = parser.parse_args()
    device, crop = args.device, args.crop or (288 if args.device.startswith("cuda") else 128)
    torch.manual_seed(0)
    hr = torch.rand(4, 3, crop, crop, device=device)
    print(f"torch {torch.__version__}, device {device}, batch 4 of {crop}x{crop}, x4; {rounds_line(args)}")
    args.timing = rounds(args, len(CONFIGS) + 2 * args.compile + 1)  # the steps, the compiled ones, the data
    time_steps(args, hr, crop, device)
    data_and_precision(args, crop, device)


def time_steps(args, hr, crop, device):
    """Steps per second of each configuration, the loss network's share of a step, the truncated
    against the whole network, the grid's device-hours; the compiled steps."""
    step_times = []
    for arch, point in CONFIGS:
        model = TransformerNet(4).to(device)
        network = LossNetwork(arch, point, weights=None).to(device)
        optimizer = adam(model.parameters(), lr=1e-3)
        loss_fn = b2.make_loss(network, 4, device)

        def full_step():
            loss = loss_fn(model, hr)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def model_only_step():  # the same step without the loss network: pixel loss
            loss = torch.nn.functional.mse_loss(model(superres.degrade(hr, 4)), hr)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        classifier = build_classifier(arch, weights=None).eval().to(device)

        @torch.no_grad()
        def truncated():
            network(hr)

        @torch.no_grad()
        def whole():
            classifier(hr)

        t = interleaved({"step": full_step, "model": model_only_step, "truncated": truncated, "whole": whole},
                        **args.timing)
        step_times.append(t["step"])
        share = 1 - t["model"] / t["step"]
        print(f"{arch:14s} {point:6s} {1 / t['step']:6.2f} steps/s   loss network {share:5.1%} of a step   "
              f"truncated forward {t['truncated'] * 1e3:7.1f} ms vs whole network {t['whole'] * 1e3:7.1f} ms "
              f"({t['truncated'] / t['whole']:.2f}x)")
    hours = sum(step_times) / len(step_times) * PAPER_STEPS * GRID_RUNS / 3600
    print(f"\nfull Benchmark 2 grid ({GRID_RUNS} runs x {PAPER_STEPS} steps) at the mean step time above: "
          f"{hours:,.0f} {device}-hours at {crop} px (a rough estimate from {len(CONFIGS)} loss networks; "
          "rerun with --device cuda --crop 288 for GPU-hours)")

    if args.compile:
        print_compiled_steps(f"model + loss network, batch 4 of {crop} px",
                             (("vgg16", "early"), ("squeezenet1_1", "late")), lambda network: TransformerNet(4),
                             lambda network: b2.make_loss(network, 4, device), hr, device, args.timing)



def data_and_precision(args, crop, device):
    """Decoding against cached pairs, the data-loading wait of a step, and what reduced precision
    changes in the scores."""
    with tempfile.TemporaryDirectory() as scratch:
        root = superres.write_fixture(Path(scratch) / "data", train=64, size=(480, 640))
        decoded = superres.CocoPairs(root, "train", count=64, scale=4, crop=crop, crop_mode=B2["train_crop"],
                                     degradation=B2["degradation"], seed=B2["seed"])
        cached = superres.CachedPairs(decoded, Path(scratch) / "cache")
        t = interleaved({"decode": lambda: [decoded[i] for i in range(len(decoded))],
                         "cache": lambda: [cached[i] for i in range(len(cached))]}, **args.timing)
        print(f"\ndata, one process: decode JPEG + resize + PIL degradation {len(decoded) / t['decode']:7.1f} pairs/s, "
              f"cached pairs {len(cached) / t['cache']:9.1f} pairs/s ({t['decode'] / t['cache']:.0f}x); a step uses 4")

        print(f"\ndata-loading wait per training step (vgg16 mid, batch 4 of {crop} px, {args.workers} workers"
              f"{', pinned memory' if device.startswith('cuda') else ''}): the share of a step spent waiting for data")
        network = LossNetwork("vgg16", "mid", weights=None).to(device)
        for name, data in (("decoded each step", decoded), ("cache_crops", cached)):
            wait, total = loading_wait(data, network, device, args.workers, steps=12)
            print(f"  {name:18s} waiting {wait * 1e3:7.1f} ms of a {total * 1e3:7.1f} ms step ({wait / total:.0%})")

        fixture = superres.write_fixture(Path(scratch) / "small")
        for arch, point in (("vgg16", "early"), ("squeezenet1_1", "late")):
            print(f"\nprecision: {arch} {point}, x4, {args.precision_steps} steps of 96 px pairs, the same seed "
                  "(PSNR in dB, SSIM; random weights, fixture data)")
            precision_changes(lambda amp: trained_scores(fixture, arch, point, amp, args.precision_steps, device),
                              ("bfloat16", "float16"), device)


def loading_wait(dataset, network, device, workers, steps):
    """Mean seconds per step spent in next(loader) and mean seconds per whole step, over
    `steps` steps after the first (which includes starting the workers), as fit() loads."""
    model = TransformerNet(4).to(device)
    loss_fn, optimizer = b2.make_loss(network, 4, device), adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True, num_workers=workers,
                                         pin_memory=device.startswith("cuda"), persistent_workers=False)
    waits, totals = [], []
    batches = iter(loader)
    while len(totals) <= steps:
        start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            continue
        loaded = time.perf_counter()
        loss = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # waits for the device
        waits.append(loaded - start)
        totals.append(time.perf_counter() - start)
    return sum(waits[1:]) / steps, sum(totals[1:]) / steps


def trained_scores(root, arch, point, amp, steps, device):
    """Test scores of a transformation network trained for `steps` steps (seed 42) in `amp`."""
    random.seed(42)
    torch.manual_seed(42)
    train = superres.CocoPairs(root, "train", count=12, scale=4, crop=96, crop_mode=B2["train_crop"],
                               degradation=B2["degradation"], seed=42)
    validation = superres.validation_pairs(root, 4, 4, 96, B2["train_crop"], B2["degradation"], seed=42)
    model = TransformerNet(4).to(device)
    network = LossNetwork(arch, point, weights=None, normalize_input=False).to(device)
    fit(model, b2.make_loss(network, 4, device), train,
        b2.make_validation(validation, 4, device, B2["metric_convention"], B2["batch_size"]), iterations=steps,
        batch_size=4, device=device, amp=amp, seed=42, progress=False)
    rows, _ = b2.evaluate(model, root, 4, device, arch, point, B2["metric_convention"], B2["channel"], B2["test_crop"],
                          B2["degradation"], 96)
    return {f"{r['score']} {r['dataset']}": r["value"] for r in rows}


if __name__ == "__main__":
    main()
