"""Benchmark 3 cost: training step time with and without the perceptual term (mu = 0.01
vs 0) for an early and a late point, the overhead ratio, and the device-hours of the full
grid (56 runs x 100 epochs x 1108 tiles).

    python bench/b3.py [--device cuda] [--size 224] [--steps 3]
"""

import argparse
import math
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import interleaved  # noqa: E402

from dplib import delineation as b3  # noqa: E402
from dplib.train import adam  # noqa: E402
from dplib.lossnets import LossNetwork  # noqa: E402
from dplib.models import IterativeUNet  # noqa: E402

warnings.filterwarnings("ignore")
CONFIGS = [("vgg19", "early"), ("vgg19", "late"), ("squeezenet1_1", "early"), ("squeezenet1_1", "late")]
BATCH, EPOCHS, TILES, RUNS = 8, 100, 1108, 56


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="tile size (default: 224 on GPU, 96 on CPU)")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    device, size = args.device, args.size or (224 if args.device.startswith("cuda") else 96)
    torch.manual_seed(0)
    images, masks = torch.rand(BATCH, 3, size, size, device=device), (torch.rand(BATCH, 1, size, size, device=device) > 0.9).float()
    print(f"torch {torch.__version__}, device {device}, batch {BATCH} of {size}x{size}, K = 3")
    times = []
    for arch, point in CONFIGS:
        model = IterativeUNet().to(device)
        network = LossNetwork(arch, point, weights=None).to(device)
        optimizer = adam(model.parameters(), lr=1e-4)

        def step(mu):
            loss = b3.make_loss(network, mu, device)(model, (images, masks))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        t = interleaved({"with": lambda: step(0.01), "without": lambda: step(0.0)}, repeat=args.steps)
        times.append(t["with"])
        print(f"{arch:14s} {point:6s} step with the perceptual term {t['with'] * 1e3:7.0f} ms, BCE only "
              f"{t['without'] * 1e3:7.0f} ms: overhead {t['with'] / t['without']:.2f}x")
    steps = EPOCHS * math.ceil(TILES / BATCH)
    hours = sum(times) / len(times) * steps * RUNS / 3600 * (224 / size) ** 2
    print(f"\nfull Benchmark 3 grid ({RUNS} runs x {steps:,} steps): about {hours:,.0f} {device}-hours "
          f"(mean step time above, scaled by area to 224 px; rerun with --device cuda for GPU-hours)")


if __name__ == "__main__":
    main()
