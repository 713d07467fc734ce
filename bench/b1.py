"""Benchmark 1 throughput: triplets per second for all 4 points of a loss network in one
pass with the reference features shared, vs the 4 points one at a time (each pair
recomputing the reference), vs the lpips package's baseline on the same backbone. Then the
shared pass in channels_last and under float16 and bfloat16 autocast, and how much those
change the 2AFC and JND scores (on BAPPS with --data-root, else on a fixture of
--fixture-triplets per subset). A precision the device computes only in emulation (a CPU
without AVX512-FP16/BF16 or AMX) is skipped, with the reason printed: emulated, it runs at a
few percent of float32's speed and would take most of the script's time.

    python bench/b1.py [--device cuda] [--budget 180] [--triplets 50] [--data-root data/bapps]

Each measurement runs its variants side by side for a share of --budget seconds (rounds sized by
time, bench/common.interleaved), so that the whole script stays near its budget on any CPU: a
slow one measures fewer rounds. The score check on the fixture has a share too: its triplets per
subset (at most --fixture-triplets) are as many as the measured speed gets through in it. --repeat
fixes the rounds, and the fixture at --fixture-triplets, instead.
"""

import argparse
import copy
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import add_rounds_arguments, interleaved, native_only, rounds, rounds_line  # noqa: E402

from dplib.data import bapps  # noqa: E402
from dplib.lossnets import POINTS, LossNetwork  # noqa: E402
from dplib.benchmarks import b1  # noqa: E402
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
    parser.add_argument("--triplets", type=int, default=50, help="triplets per timed call")
    parser.add_argument("--batch-size", type=int, default=50)
    add_rounds_arguments(parser, budget_s=180)
    parser.add_argument("--data-root", help="a BAPPS root for the score check (default: a fixture built here)")
    parser.add_argument("--fixture-triplets", type=int, default=200,
                        help="fixture size per subset, at most (fewer where the budget's share would not run them)")
    args = parser.parse_args()
    import lpips

    started = time.perf_counter()
    torch.manual_seed(0)
    device = args.device
    ref, p0, p1 = (torch.rand(args.triplets, 3, 64, 64, device=device) for _ in range(3))
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"{args.triplets} triplets of 64x64, batch {args.batch_size}; {rounds_line(args)}")
    args.timing = rounds(args, 6)  # two networks, two measurements and a score check each
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
        t = interleaved({"shared": shared, "alone": one_at_a_time, "lpips": lpips_package}, **args.timing)
        rate = {k: args.triplets / v for k, v in t.items()}
        print(f"\n{arch}: triplets/s  all 4 points, one pass, ref shared {rate['shared']:8.1f}")
        speedup = rate["shared"] / rate["alone"]
        print(f"{arch}: triplets/s  4 points one at a time, ref recomputed {rate['alone']:8.1f}   "
              f"speed-up {speedup:.2f}x (FLOP ratio, its ceiling: {ceiling:.2f}x; {speedup / ceiling:.2f} of it)")
        print(f"{arch}: triplets/s  lpips package, its {len(reference.chns)} layers   {rate['lpips']:8.1f}   "
              f"dplib (4 points) / lpips {rate['shared'] / rate['lpips']:.2f}x")
        precision(arch, together, dataset, ref, args)
    print(f"\nthe whole script: {(time.perf_counter() - started) / 60:.1f} min")


def shared_pass(network, dataset, args, **options):
    return lambda: b1.pair_distances(network, dataset, "p0", "p1", reference="ref", batch_size=args.batch_size,
                                     device=args.device, progress=False, **options)


def fixture_size(args, rates):
    """Fixture triplets per subset for the score check: --fixture-triplets, or with a --budget
    as many as its share runs at the slowest of `rates` (triplets/s), in every 2AFC and JND subset
    for each of the len(rates) / 2 precisions (at least 8)."""
    if args.repeat:
        return args.fixture_triplets
    subsets = len(bapps.TWO_AFC_SUBSETS) + len(bapps.JND_SUBSETS)
    affordable = args.timing["budget_s"] * min(rates) / (subsets * len(rates) / 2)
    return max(8, min(args.fixture_triplets, int(affordable)))


def precision(arch, network, dataset, ref, args):
    """The shared pass under autocast (float16, bfloat16) and channels_last: speed, and the
    largest change of any 2AFC and JND score from float32, for each dtype's faster layout."""
    network_cl = copy.deepcopy(network).to(memory_format=torch.channels_last)
    dtypes = (False,) + native_only(("float16", "bfloat16"), args.device)
    variants = {(autocast, layout): (network_cl if layout else network, dict(autocast=autocast, channels_last=layout))
                for autocast in dtypes for layout in (False, True)}
    t = interleaved({key: shared_pass(net, dataset, args, **options) for key, (net, options) in variants.items()},
                    **args.timing)
    baseline = t[(False, False)]
    for (autocast, layout), seconds in t.items():
        name = f"{autocast or 'float32'}{' channels_last' if layout else ''}"
        print(f"{arch}: triplets/s  shared pass, {name:24s} {len(ref) / seconds:8.1f}   {baseline / seconds:.2f}x float32")
    if len(dtypes) == 1:
        print(f"{arch}: no reduced precision to compare with float32's scores on this device")
        return
    with tempfile.TemporaryDirectory() as scratch:
        root, per_subset = args.data_root, fixture_size(args, [len(ref) / t[key] for key in t])
        if root is None:
            root = Path(scratch) / "bapps"
            bapps.write_fixture(root, patches_per_subset=per_subset)
        scores = {}
        for autocast in dtypes:
            key = min([(autocast, False), (autocast, True)], key=t.get)
            net, options = variants[key]
            distances = b1.evaluate(net, root, Path(scratch) / str(key), bapps.TWO_AFC_SUBSETS, bapps.JND_SUBSETS,
                                    batch_size=args.batch_size, device=args.device, progress=False, **options)
            scores[autocast] = {(r["score"], r["dataset"], r["point"]): r["value"]
                                for r in b1.score_rows(arch, net.points, *distances)}
    data = "BAPPS" if args.data_root else f"the fixture ({per_subset} per subset)"
    for autocast in dtypes[1:]:
        for score in ("2afc", "jnd_map"):
            delta = {k: abs(v - scores[False][k]) for k, v in scores[autocast].items() if k[0] == score}
            worst = max(delta, key=delta.get)
            print(f"{arch}: {autocast} vs float32 on {data}: largest |change| of {score} over {len(delta)} scores "
                  f"{delta[worst]:.1e} ({worst[1]}, {worst[2]})")


if __name__ == "__main__":
    main()
