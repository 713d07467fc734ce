"""Loss network speed: all four points in one pass vs four truncated networks, and the
Eq. 1 distance vs the lpips package's baseline on the same backbone. CPU by default.

    python bench/lossnets.py [--device cuda] [--budget 60] [--repeat 5]

Each of its five measurements runs its two variants side by side for a fifth of --budget
seconds (rounds sized by time, bench/common.interleaved); --repeat fixes the rounds instead.
"""

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import add_rounds_arguments, interleaved, rounds, rounds_line  # noqa: E402

from dplib.lossnets import POINTS, LossNetwork  # noqa: E402
from dplib.losses import perceptual_distance  # noqa: E402

warnings.filterwarnings("ignore")


MEASUREMENTS = 5  # two networks one pass vs separate, three distances against lpips


def one_pass_vs_separate(arch, x, timing):
    together = LossNetwork(arch, points=POINTS, weights=None).to(x.device)
    separate = [LossNetwork(arch, points=p, weights=None).to(x.device) for p in POINTS]

    @torch.no_grad()
    def run_together():
        together(x)

    @torch.no_grad()
    def run_separate():
        for net in separate:
            net(x)

    t = interleaved({"one pass": run_together, "separate": run_separate}, **timing)
    return t["one pass"], t["separate"]


def distance_vs_lpips(net_name, arch, x0, x1, timing):
    import lpips

    reference = lpips.LPIPS(net=net_name, lpips=False, pnet_rand=True, verbose=False).to(x0.device)
    ours = LossNetwork(arch, points="late", weights=None).to(x0.device)

    @torch.no_grad()
    def run_ours():
        perceptual_distance(ours(x0), ours(x1))

    @torch.no_grad()
    def run_lpips():
        reference(x0, x1, normalize=True)

    t = interleaved({"ours": run_ours, "lpips": run_lpips}, **timing)
    return t["ours"], t["lpips"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    add_rounds_arguments(parser, budget_s=60)
    args = parser.parse_args()
    torch.manual_seed(0)
    timing = rounds(args, MEASUREMENTS)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}; {rounds_line(args)}")

    print("\nAll 4 points in one pass vs 4 separate truncated networks (batch 50, 64x64):")
    x = torch.rand(50, 3, 64, 64, device=args.device)
    for arch in ("alexnet", "vgg16"):
        one, separate = one_pass_vs_separate(arch, x, timing)
        print(f"  {arch:8s} one pass {one * 1e3:7.1f} ms   separate {separate * 1e3:7.1f} ms   "
              f"speed-up {separate / one:4.2f}x")

    print("\nEq. 1 distance at the deepest point vs the lpips baseline (all its layers), batch 50, 64x64:")
    x0, x1 = torch.rand(50, 3, 64, 64, device=args.device), torch.rand(50, 3, 64, 64, device=args.device)
    for net_name, arch in (("alex", "alexnet"), ("vgg", "vgg16"), ("squeeze", "squeezenet1_1")):
        ours, theirs = distance_vs_lpips(net_name, arch, x0, x1, timing)
        print(f"  {arch:14s} dplib {ours * 1e3:7.1f} ms   lpips {theirs * 1e3:7.1f} ms   "
              f"lpips / dplib {theirs / ours:4.2f}x")


if __name__ == "__main__":
    main()
