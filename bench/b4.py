"""Benchmark 4 cost: an autoencoder epoch with cached target features vs recomputing them,
the training time of I-F-FP vs I-I-PS (paper 004 reports 55-75%), the share of a run
spent on embeddings and predictors, compiled vs eager steps, and what bfloat16 (and float16 on a GPU) changes in the
accuracy of a small run.

    python bench/b4.py [--device cuda] [--images 1024] [--networks alexnet:semi_early,vgg16:mid] [--budget 180]

The timed epochs and steps share --budget seconds (bench/common.interleaved: rounds sized by time,
so a slow CPU measures fewer rounds; --repeat fixes them); the share of a run (one epoch of each
part) and the precision comparison (--precision-epochs) are fixed work, outside it.
"""

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (add_rounds_arguments, interleaved, notebook_defaults, precision_changes,  # noqa: E402
                    print_compiled_steps, rounds, rounds_line)

from dplib.benchmarks import b4, b4_predictors, b4_procedures  # noqa: E402
from dplib.data import embeddings  # noqa: E402
from dplib.train import adam, fit  # noqa: E402
from dplib.lossnets import LossNetwork  # noqa: E402

warnings.filterwarnings("ignore")
B4 = notebook_defaults("b4_autoencoding")  # the protocol the bench times
PADDING = B4["svhn_padding"]


def autoencoder(procedure, dataset, feature_size):
    return b4.build_autoencoder(procedure, dataset, feature_size, B4["embedding_size"], B4["variational"],
                                B4["autoencoder"], B4["feature_decoder_sigmoid"])


def loss_for(procedure, dataset, network, device, cache=None):
    return b4.make_loss(procedure, dataset, network, device, B4["loss_reduction"], B4["kl_weight"], B4["feature_sigmoid"],
                        cache)


def predictors(train, validation, test, epochs, device):
    return b4_predictors.train_predictors(train, validation, test, epochs=epochs, batch_size=B4["batch_size"], lr=B4["lr"], seed=0,
                               device=device, loss=B4["predictor_loss"], select=B4["predictor_selection"],
                               patience=b4_predictors.patience(B4["mlp_patience"], epochs), standardize=B4["standardize_embeddings"],
                               specs=b4_predictors.predictor_specs(B4["predictor"], B4["predictor_activation"]), progress=False)


def step_flops(model, loss_fn, batch):
    """FLOPs of one training step (forward and backward) as torch's FLOP counter sees them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss_fn(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def epoch(model, loss_fn, loader, optimizer):
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--networks", default="alexnet:semi_early,vgg16:mid,resnet50:late",
                        help="arch:point pairs, comma-separated")
    add_rounds_arguments(parser, budget_s=180)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compiled-step timing")
    parser.add_argument("--precision-epochs", type=int, default=2, help="autoencoder epochs of the precision comparison")
    args = parser.parse_args()
    device = args.device
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8)  # SVHN-sized
    labels = torch.randint(0, 10, (args.images,))
    print(f"torch {torch.__version__}, device {device}, {args.images} SVHN-sized images (64 px), batch 128; "
          f"{rounds_line(args)}")
    loader = torch.utils.data.DataLoader(embeddings.Images("svhn", images, labels, PADDING), batch_size=128, shuffle=True)
    configs = [tuple(c.split(":")) for c in args.networks.split(",")]
    args.timing = rounds(args, len(configs) + 2 * args.compile)  # each network's epochs, two compiled steps
    cached_against_recomputed(args, configs, images, loader, device)
    share_of_a_run(args, configs, images, labels, loader, device)
    compiled_and_precision(args, configs, loader, device)


def cached_against_recomputed(args, configs, images, loader, device):
    """Per network: an I-I-PS epoch with cached targets against recomputed ones, I-F-FP against
    I-I-PS, fused against torch's default Adam (FLOP ratios as the ceilings)."""
    for arch, point in configs:
        network = LossNetwork(arch, point, weights=None).to(device)
        feature_size = int(np.prod(b4_procedures.feature_shape(network, "svhn")))
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            cache = b4_procedures.FeatureCache(network, "svhn", images, Path(scratch) / "f.f32", device, PADDING, progress=False)
            build = time.perf_counter() - start
            runs, flops = {}, {}
            contenders = (("cached", "I-I-PS", cache, adam), ("recomputed", "I-I-PS", None, adam),
                          ("I-F-FP", "I-F-FP", cache, adam),
                          ("I-F-FP, unfused Adam", "I-F-FP", cache, lambda p, lr: torch.optim.Adam(p, lr=lr)))
            for name, procedure, cached, optimizer_for in contenders:
                model = autoencoder(procedure, "svhn", feature_size).to(device)
                optimizer = optimizer_for(model.parameters(), lr=1e-3)
                loss_fn = loss_for(procedure, "svhn", network, device, cached)
                flops[name] = step_flops(model, loss_fn, next(iter(loader)))
                runs[name] = (lambda m=model, f=loss_fn, o=optimizer: epoch(m, f, loader, o))
            t = interleaved(runs, **args.timing)
        print(f"\n{arch} {point} ({feature_size} features): I-I-PS epoch with cached targets {t['cached']:.2f} s, "
              f"recomputed {t['recomputed']:.2f} s: {t['recomputed'] / t['cached']:.2f}x faster (FLOP ratio, its "
              f"ceiling: {flops['recomputed'] / flops['cached']:.2f}x; cache built once in {build:.2f} s)")
        print(f"{arch} {point}: I-F-FP epoch {t['I-F-FP']:.2f} s = {t['I-F-FP'] / t['recomputed']:.0%} of I-I-PS "
              f"as the companion paper ran it (recomputed; FLOP ratio {flops['I-F-FP'] / flops['recomputed']:.0%}), "
              f"{t['I-F-FP'] / t['cached']:.0%} of I-I-PS cached (paper 004: 55-75%)")
        print(f"{arch} {point}: I-F-FP with fused Adam (dplib.train.adam) vs torch's default Adam: "
              f"{t['I-F-FP, unfused Adam'] / t['I-F-FP']:.2f}x faster")



def share_of_a_run(args, configs, images, labels, loader, device):
    """What share of a run the autoencoder, the embeddings and the predictors take."""
    arch, point = configs[0]
    network = LossNetwork(arch, point, weights=None).to(device)
    feature_size = int(np.prod(b4_procedures.feature_shape(network, "svhn")))
    model = autoencoder("I-I-PS", "svhn", feature_size).to(device)
    start = time.perf_counter()
    embedded = b4.embed(model, "I-I-PS", "svhn", images, network, device, B4["feature_sigmoid"], PADDING)
    embedding_seconds = time.perf_counter() - start
    half = len(images) // 2
    start = time.perf_counter()
    predictors((embedded[:half], labels[:half]), (embedded[half:], labels[half:]), (embedded[half:], labels[half:]), 10,
               device)
    predictor_seconds = (time.perf_counter() - start) * 10  # the paper: 100 epochs
    loss_fn = loss_for("I-I-PS", "svhn", network, device)
    optimizer = adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    epoch(model, loss_fn, loader, optimizer)
    ae_seconds = (time.perf_counter() - start) * 10  # the paper: 10 epochs
    total = ae_seconds + embedding_seconds + predictor_seconds
    print(f"\nshare of a run ({arch} {point}, AE and labelled sets of {args.images} images, 10 AE epochs, 7 "
          f"predictors x 100 epochs): autoencoder {ae_seconds / total:.0%}, embeddings {embedding_seconds / total:.0%},"
          f" predictors {predictor_seconds / total:.0%}. In the paper the AE set is 7x (SVHN extra vs train) "
          "to 20x (STL-10 unlabeled vs train) the labelled set, so the predictors' share is smaller still.")



def compiled_and_precision(args, configs, loader, device):
    """The compiled steps, and what reduced precision changes in the accuracies."""
    if args.compile:
        print_compiled_steps(
            "I-I-PS autoencoder + loss network, batch 128", configs[:2],
            lambda network: autoencoder("I-I-PS", "svhn", int(np.prod(b4_procedures.feature_shape(network, "svhn")))),
            lambda network: loss_for("I-I-PS", "svhn", network, device), next(iter(loader)), device,
            args.timing)

    with tempfile.TemporaryDirectory() as scratch:
        root = embeddings.write_fixture(embeddings.write_fixture(Path(scratch), "svhn"), "stl10")
        for arch, point in configs[:2]:
            print(f"\nprecision: {arch} {point}, {args.precision_epochs} autoencoder epochs and 30 predictor epochs on "
                  "the fixtures, the same seed (test accuracy; random weights)")
            precision_changes(lambda amp: trained_accuracy(root, arch, point, amp, args.precision_epochs, device),
                              ("bfloat16", "float16"), device)


def trained_accuracy(root, arch, point, amp, epochs, device):
    """Test accuracy on SVHN and STL-10 after a small I-I-PS run (seed 0) in `amp`."""
    scores = {}
    for dataset in ("svhn", "stl10"):
        torch.manual_seed(0)
        read = dict(orientation=B4["stl10_orientation"])
        ae_images, _ = embeddings.load_split(dataset, root, embeddings.AUTOENCODER_SPLIT[dataset], **read)
        train_images, train_labels = embeddings.load_split(dataset, root, "train", **read)
        test_images, test_labels = embeddings.load_split(dataset, root, "test", **read)
        network = LossNetwork(arch, point, weights=None, normalize_input=False).to(device)
        model = autoencoder("I-I-PS", dataset, 0).to(device)
        data = embeddings.Images(dataset, ae_images, torch.full((len(ae_images),), -1), PADDING)
        loss_fn = loss_for("I-I-PS", dataset, network, device)
        fit(model, loss_fn, data, b4.make_validation(loss_fn, data, 0), epochs=epochs, batch_size=16, mode="min",
            device=device, amp=amp, progress=False)
        train = b4.embed(model, "I-I-PS", dataset, train_images, network, device, B4["feature_sigmoid"], PADDING)
        test = b4.embed(model, "I-I-PS", dataset, test_images, network, device, B4["feature_sigmoid"], PADDING)
        fit_part, validation_part = embeddings.split_indices(len(train_images), 0, B4["split"])
        scores[f"accuracy {dataset}"], _, _ = predictors(
            (train[fit_part], train_labels[fit_part]), (train[validation_part], train_labels[validation_part]),
            (test, test_labels), 30, device)
    return scores


if __name__ == "__main__":
    main()
