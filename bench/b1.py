"""Benchmark 1 throughput: triplets per second for all 4 points of a loss network in one
pass with the reference features shared, vs the 4 points one at a time (each pair
recomputing the reference), vs the lpips package's baseline on the same backbone.

    python bench/b1.py [--device cuda] [--triplets 100] [--repeat 3]
"""

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import interleaved  # noqa: E402

from dplib.lossnets import POINTS, LossNetwork  # noqa: E402
from dplib import perceptual_similarity as b1  # noqa: E402
from dplib.losses import perceptual_distance  # noqa: E402

warnings.filterwarnings("ignore")
LPIPS_NAME = {"alexnet": "alex", "vgg16": "vgg", "squeezenet1_1": "squeeze"}


def flop_ceiling(together, alone, r, a, b):
    """FLOPs of the one-at-a-time way over FLOPs of the shared pass: the most the shared
    pass can gain when every FLOP costs the same."""
    from torch.utils.flop_counter import FlopCounterMode

    def flops(fn):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    shared = flops(lambda: together(torch.cat([r, a, b])))
    separate = flops(lambda: [net(x) for net in alone.values() for x in (r, a, r, b)])
    return separate / shared


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--triplets", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import lpips

    torch.manual_seed(0)
    device = args.device
    ref, p0, p1 = (torch.rand(args.triplets, 3, 64, 64, device=device) for _ in range(3))
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"{args.triplets} triplets of 64x64, batch {args.batch_size}")
    for arch in ("alexnet", "vgg16"):
        together = LossNetwork(arch, POINTS, weights=None).to(device)
        alone = {p: LossNetwork(arch, p, weights=None).to(device) for p in POINTS}
        reference = lpips.LPIPS(net=LPIPS_NAME[arch], lpips=False, pnet_rand=True, verbose=False).to(device)

        dataset = [dict(ref=r, p0=a, p1=b) for r, a, b in zip(ref, p0, p1)]

        def shared():  # Benchmark 1's own code path
            b1.pair_distances(together, dataset, "p0", "p1", reference="ref", batch_size=args.batch_size,
                              device=device, progress=False)

        def loader():  # the same data path for every contender: one DataLoader pass over the triplets
            return torch.utils.data.DataLoader(dataset, batch_size=args.batch_size)

        @torch.no_grad()
        def one_at_a_time():  # four runs, one per point, each reading the data and passing ref per pair
            for point, net in alone.items():
                for batch in loader():
                    r, a, b = batch["ref"], batch["p0"], batch["p1"]
                    perceptual_distance(net(r), net(a)), perceptual_distance(net(r), net(b))

        @torch.no_grad()
        def lpips_package():
            for batch in loader():
                r, a, b = batch["ref"], batch["p0"], batch["p1"]
                reference(r, a, normalize=True), reference(r, b, normalize=True)

        ceiling = flop_ceiling(together, alone, ref[:2], p0[:2], p1[:2])
        t = interleaved({"shared": shared, "alone": one_at_a_time, "lpips": lpips_package}, repeat=args.repeat)
        rate = {k: args.triplets / v for k, v in t.items()}
        print(f"\n{arch}: triplets/s  all 4 points, one pass, ref shared {rate['shared']:8.1f}")
        print(f"{arch}: triplets/s  4 points one at a time, ref recomputed {rate['alone']:8.1f}   "
              f"speed-up {rate['shared'] / rate['alone']:.2f}x (FLOP ratio, its ceiling: {ceiling:.2f}x)")
        print(f"{arch}: triplets/s  lpips package, its {len(reference.chns)} layers   {rate['lpips']:8.1f}   "
              f"dplib (4 points) / lpips {rate['shared'] / rate['lpips']:.2f}x")


if __name__ == "__main__":
    main()
