"""Benchmark 3 cost: training step time with and without the perceptual term (mu = 0.01
vs 0) for an early and a late point, the overhead ratio, the device-hours of the full grid
(56 runs x 100 epochs x 1108 tiles), compiled vs eager steps, and what bfloat16 (and float16 on a GPU) changes in
the scores of a small training run.

    python bench/b3.py [--device cuda] [--size 224] [--budget 180] [--precision-epochs 60]

The timed steps share --budget seconds (bench/common.interleaved: rounds sized by time, so a
slow CPU measures fewer rounds; --repeat fixes them); the precision comparison trains a fixed
--precision-epochs epochs, outside it.
"""

import argparse
import random
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (add_rounds_arguments, grid_lengths, interleaved, notebook_defaults, precision_changes,  # noqa: E402
                    print_compiled_steps, rounds, rounds_line)

from dplib.benchmarks import b3  # noqa: E402
from dplib.data import roads  # noqa: E402
from dplib.train import adam, fit  # noqa: E402
from dplib.lossnets import LossNetwork  # noqa: E402
from dplib.models import IterativeUNet  # noqa: E402

warnings.filterwarnings("ignore")
CONFIGS = [("vgg19", "early"), ("vgg19", "late"), ("squeezenet1_1", "early"), ("squeezenet1_1", "late")]
B3 = notebook_defaults("b3_delineation")  # the protocol the bench times
BATCH = B3["batch_size"]
(STEPS,), (RUNS,) = (values.values() for values in grid_lengths("b3"))  # 100 epochs of 139 steps, 56 runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="tile size (default: 224 on GPU, 96 on CPU)")
    add_rounds_arguments(parser, budget_s=180)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compiled-step timing")
    parser.add_argument("--precision-epochs", type=int, default=60, help="epochs of the precision comparison")
    args = parser.parse_args()
    device, size = args.device, args.size or (224 if args.device.startswith("cuda") else 96)
    torch.manual_seed(0)
    images, masks = torch.rand(BATCH, 3, size, size, device=device), (torch.rand(BATCH, 1, size, size, device=device) > 0.9).float()
    print(f"torch {torch.__version__}, device {device}, batch {BATCH} of {size}x{size}, K = 3; {rounds_line(args)}")
    timing = rounds(args, len(CONFIGS) + 2 * args.compile)  # the steps, the compiled ones
    times = []
    for arch, point in CONFIGS:
        model = b3.build_model(B3).to(device)
        network = LossNetwork(arch, point, weights=None).to(device)
        optimizer = adam(model.parameters(), lr=1e-3)

        def step(mu):
            loss = b3.make_loss(network, mu, device)(model, (images, masks))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        t = interleaved({"with": lambda: step(0.01), "without": lambda: step(0.0)}, **timing)
        times.append(t["with"])
        print(f"{arch:14s} {point:6s} step with the perceptual term {t['with'] * 1e3:7.0f} ms, BCE only "
              f"{t['without'] * 1e3:7.0f} ms: overhead {t['with'] / t['without']:.2f}x")
    steps = STEPS
    hours = sum(times) / len(times) * steps * RUNS / 3600 * (224 / size) ** 2
    print(f"\nfull Benchmark 3 grid ({RUNS} runs x {steps:,} steps): about {hours:,.0f} {device}-hours "
          f"(mean step time above, scaled by area to 224 px; rerun with --device cuda for GPU-hours)")

    if args.compile:
        print_compiled_steps(f"U-Net x K + loss network, batch {BATCH} of {size} px",
                             (("vgg19", "early"), ("squeezenet1_1", "late")), lambda network: b3.build_model(B3),
                             lambda network: b3.make_loss(network, 0.01, device), (images, masks), device, timing)

    with tempfile.TemporaryDirectory() as scratch:
        root = roads.write_fixture(Path(scratch) / "roads")
        for arch, point in (("vgg19", "early"), ("squeezenet1_1", "late")):
            print(f"\nprecision: {arch} {point}, {args.precision_epochs} epochs of 8 fixture tiles at 64 px, the same "
                  "seed, the standard U-Net (scores in percent; random weights). The released U-Net ends in batch "
                  "norm without a bias, so it starts every pixel at p = 0.5 and needs thousands of steps to reach "
                  "the road prior: in a run this short it marks everything as road under any precision")
            precision_changes(lambda amp: trained_scores(root, arch, point, amp, args.precision_epochs, device),
                              ("bfloat16", "float16"), device)


def trained_scores(root, arch, point, amp, epochs, device):
    """Test scores of an iterative (standard) U-Net trained for `epochs` epochs (seed 0) in `amp`."""
    random.seed(0)
    torch.manual_seed(0)
    train, validation, test = (roads.RoadTiles(root, split, 64, B3["resize_antialias"]) for split in ("train", "valid", "test"))
    model = IterativeUNet(unet="standard", base_channels=8).to(device)
    network = LossNetwork(arch, point, weights=None).to(device)
    loss_fn = b3.make_loss(network, B3["mu"], device, weights=B3["iteration_weights"])
    validate = b3.make_validation(loss_fn, validation, device, B3["validation_score"], B3["train_iterations_k"], 4)
    fit(model, loss_fn, train, validate, epochs=epochs, batch_size=4, mode="min", device=device, amp=amp, progress=False)
    rows, _ = b3.evaluate(model, test, device, arch, point, B3["threshold"], B3["slacks"], B3["iteration_scores"], "test",
                          B3["test_batch_statistics"])
    return {r["score"]: r["value"] for r in rows}


if __name__ == "__main__":
    main()
