"""Calibrating Benchmark 1's metrics ("lin"): the released exact path against lin_cache,
measured side by side in one run.

Exact (the protocol default, as released): every training step runs the frozen network on
the batch's triplets and puts dropout on the maps; the 10 epochs of the recipe run the
network 10 times over BAPPS's 2AFC training set, once per point (Benchmark 1 calibrates each
point on its own). Cached (`lin_cache=True`): one pass over the training set caches every
point's channel means (N, 2, C), then each epoch trains on those vectors.

Measured on BAPPS-shaped batches (64 px triplets, the released recipe's batch) of random
pixels: the network's cost does not depend on the pixels. Image decoding is left out (on a
GPU it overlaps in DataLoader workers; the exact path decodes every image 10 times, the
cached one once). Prints seconds per triplet of each part, one network's whole calibration
(all four points) at the paper's sizes both ways, and the ratio; then the same summed over
the networks given (--arch), in device-hours.

    python bench/calibration.py [--device cuda] [--arch alexnet vgg16] [--budget 600] [--repeat 3] [--batch 256]

Each network's four points share --budget's seconds (rounds sized by time, bench/common.
interleaved: at least one round after the warm-up, however slow the CPU); --repeat fixes the
rounds instead.
"""

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import add_rounds_arguments, interleaved, notebook_defaults, rounds, rounds_line  # noqa: E402

from dplib import calibration  # noqa: E402
from dplib.data import bapps  # noqa: E402
from dplib.lossnets import POINTS  # noqa: E402
from dplib.similarity import PerceptualSimilarity  # noqa: E402

TRIPLETS = sum(count for count, _ in bapps.COUNTS["2afc/train"].values())  # BAPPS 2AFC train: 151.3K
PASSES = notebook_defaults("b1_perceptual_similarity")["forward_passes"]  # the exact path as the protocol runs it


def measure(arch, recipe, device, timing, batch=None):
    """Seconds per triplet: {point: exact step}, the shared caching pass, {point: cached step}, on
    batches of the recipe's size (or `batch`, a smoke knob: seconds per triplet shift a little)."""
    settings = calibration.RECIPES[recipe]
    n = batch or settings["batch_size"]
    generator = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(n, 3, 64, 64, generator=generator) for k in ("ref", "p0", "p1")}
    batch["judge"] = torch.rand(n, generator=generator)
    judge = batch["judge"].to(device)
    shared = PerceptualSimilarity(arch, POINTS, weights=None).to(device).eval()
    items = [{k: v[i] for k, v in batch.items()} for i in range(n)]
    vectors = calibration.channel_means(shared, items, n, device, progress=False)  # {point: (n, 2, C)}

    def cache_pass():
        calibration.channel_means(shared, items, n, device, progress=False)

    steps = {}
    for point in POINTS:
        metric = PerceptualSimilarity(arch, point, weights=None).to(device).eval()
        metric.channel_weights = calibration._initial_weights(metric.cpu(), generator).to(device)
        metric.to(device)
        head = calibration.RankingHead().to(device)
        optimizer = torch.optim.Adam(list(metric.channel_weights.values()) + list(head.parameters()),
                                     lr=settings["lr"], betas=settings["betas"])
        w = metric.channel_weights[point]
        v = vectors[point].to(device)

        def train(d0, d1):
            loss = torch.nn.functional.binary_cross_entropy(head(d0, d1), judge)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            calibration._clamp(metric, "channel_weights", released_timing=False)

        def exact():
            train(*calibration._exact_distances(metric, batch, device, settings["dropout"], train_trunk=False,
                                                passes=PASSES))

        def cached():
            dropped = torch.nn.functional.dropout(v, settings["dropout"], training=True)
            train(dropped[:, 0] @ w, dropped[:, 1] @ w)

        steps[point] = interleaved({"exact": exact, "cached": cached, "pass": cache_pass}, **timing)

    pass_s = statistics.median(s["pass"] for s in steps.values())  # measured beside each point's steps
    return ({p: s["exact"] / n for p, s in steps.items()}, pass_s / n, {p: s["cached"] / n for p, s in steps.items()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", nargs="+", default=["alexnet", "vgg16"])
    parser.add_argument("--recipe", default="released", choices=sorted(calibration.RECIPES))
    add_rounds_arguments(parser, budget_s=600)
    parser.add_argument("--batch", type=int, default=None,
                        help="triplets per measured step (default: the recipe's, 256; smaller only to try the script)")
    parser.add_argument("--out", default="results/bench",
                        help="where the measurement goes: <out>/calibration_<device>.json")
    args = parser.parse_args()
    settings = calibration.RECIPES[args.recipe]
    epochs = settings["constant_epochs"] + settings["decay_epochs"]
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; recipe "
          f"{args.recipe} (batch {settings['batch_size']}, {epochs} epochs); BAPPS 2AFC train: {TRIPLETS} triplets; "
          f"{rounds_line(args)}")
    totals = {"exact": 0.0, "cached": 0.0}
    measured = {"device": args.device, "cpu": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(), "torch": str(torch.__version__), "recipe": args.recipe,
                "forward_passes": PASSES, "triplets": TRIPLETS, "batch": args.batch or settings["batch_size"],
                "epochs": epochs, "networks": {}}
    for arch in args.arch:
        exact, pass_s, cached = measure(arch, args.recipe, args.device, rounds(args, len(args.arch) * len(POINTS)),
                                        args.batch)
        whole_exact = sum(epochs * TRIPLETS * s for s in exact.values())
        whole_cached = TRIPLETS * pass_s + sum(epochs * TRIPLETS * s for s in cached.values())
        totals["exact"] += whole_exact
        totals["cached"] += whole_cached
        measured["networks"][arch] = {"exact_step_s_per_triplet": exact, "cached_step_s_per_triplet": cached,
                                      "caching_pass_s_per_triplet": pass_s, "exact_hours": whole_exact / 3600,
                                      "cached_hours": whole_cached / 3600, "speedup": whole_exact / whole_cached}
        print(f"\n{arch}: ms per triplet")
        print(f"  {'point':12s} {'exact step':>11s} {'cached step':>12s}")
        for point in POINTS:
            print(f"  {point:12s} {exact[point] * 1e3:11.3f} {cached[point] * 1e3:12.4f}")
        print(f"  one caching pass, all points: {pass_s * 1e3:.3f}")
        print(f"  all four points calibrated, paper's sizes: exact {whole_exact / 3600:.2f} h, cached "
              f"{whole_cached / 3600:.2f} h: cached is {whole_exact / whole_cached:.1f}x faster")
    print(f"\n{len(args.arch)} networks, all points, {args.device}: exact {totals['exact'] / 3600:.1f} h, cached "
          f"{totals['cached'] / 3600:.1f} h ({totals['exact'] / totals['cached']:.1f}x)")
    out = Path(args.out) / f"calibration_{torch.device(args.device).type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(measured, indent=1) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
