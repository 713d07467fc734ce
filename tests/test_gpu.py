"""The GPU path (make gpu-check): every loss network at each benchmark's sizes on CUDA, B1's
float16 scores, CUDA training steps equal to CPU ones, one GPU per grid worker.

Marked `gpu` and skipped with the reason when CUDA is absent, so a CPU run reports them as
skipped. With $DPLIB_GPU_RECORD set, each forward/backward appends its peak memory to that
JSON-lines file (bench/gpu_report.py folds it into results/gpu/<device>.json).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

import dplib.extended  # noqa: F401  (registers the extended networks: "every registered network")
from dplib.lossnets import LossNetwork, REGISTRY

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU: run `make gpu-check` on a machine with an NVIDIA GPU")]

# (images per forward, side in px) each benchmark feeds its loss network in the paper:
# B1 150 patches of 64 px (ref, p0, p1 of 50 triplets), B2 4 targets of 288 px, B3 8 tiles of
# 224 px for each of K = 3 iterations, B4 batches of 256 at 64 px (SVHN) and 96 px (STL-10).
PAPER_SIZES = {"b1": (150, 64), "b2": (4, 288), "b3": (8 * 3, 224), "b4_svhn": (256, 64), "b4_stl10": (256, 96)}
PRECISIONS = (False, "bfloat16", "float16")
# CUDA convolutions and matmuls may use TF32 for float32 inputs; the equality tests turn it off
# and then hold CUDA to CPU within this (absolute) tolerance on the weights after the steps.
STEP_TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def exact_float32():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def record(row):
    path = os.environ.get("DPLIB_GPU_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("precision", PRECISIONS, ids=["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("benchmark", PAPER_SIZES)
@pytest.mark.parametrize("arch", [name for name in REGISTRY])
def test_every_network_forward_and_backward_at_the_papers_sizes(arch, benchmark, precision):
    count, side = PAPER_SIZES[benchmark]
    network = LossNetwork(arch, weights=None).cuda()
    x = torch.rand(count, 3, side, side, device="cuda", requires_grad=True)
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=precision or torch.float32, enabled=bool(precision)):
        features = network(x)
        loss = sum(f.float().square().mean() for f in features.values())
    loss.backward()
    torch.cuda.synchronize()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    record({"arch": arch, "benchmark": benchmark, "precision": precision or "float32", "images": count, "side": side,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30})


def test_b1_float16_scores_are_float32_scores_within_1e_3(tmp_path):
    from dplib.benchmarks import b1
    from dplib.data import bapps

    root = bapps.write_fixture(tmp_path / "bapps", patches_per_subset=50)
    network = LossNetwork("alexnet", weights=None).cuda()
    rows = {}
    for autocast in (False, "float16"):
        distances = b1.evaluate(network, root, tmp_path / str(autocast), bapps.TWO_AFC_SUBSETS, bapps.JND_SUBSETS,
                                device="cuda", autocast=autocast, progress=False)
        rows[autocast] = {(r["score"], r["dataset"], r["point"]): r["value"]
                          for r in b1.score_rows("alexnet", network.points, *distances)}
    assert rows[False].keys() == rows["float16"].keys()
    for key, value in rows[False].items():
        assert abs(rows["float16"][key] - value) <= 1e-3, key


def steps_on(device, build, loss_for, batch, steps=3):
    """Weights after `steps` SGD steps of `build()` (seeded) under `loss_for(device)` on `batch`."""
    torch.manual_seed(0)
    model = build().to(device)
    loss_fn = loss_for(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def benchmark_steps():
    from dplib.benchmarks import b2, b3, b4
    from dplib.data import embeddings
    from dplib.models import IterativeUNet, TransformerNet

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 96, 96, generator=generator)
    masks = (torch.rand(4, 1, 96, 96, generator=generator) > 0.9).float()
    svhn = next(iter(torch.utils.data.DataLoader(embeddings.Images(
        "svhn", torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=generator), torch.zeros(8), "reflect"),
        batch_size=8)))  # (images at 64 px, labels, indices) as the B4 notebook's loader gives them

    def network(arch, point, device):
        return LossNetwork(arch, point, weights=None, seed=0).to(device)

    return {
        "b2": (lambda: TransformerNet(4), lambda d: b2.make_loss(network("vgg16", "semi_early", d), 4, d), images),
        "b3": (lambda: IterativeUNet(), lambda d: b3.make_loss(network("squeezenet1_1", "mid", d), 0.01, d),
               (images, masks)),
        "b4": (lambda: b4.build_autoencoder("I-I-PS", "svhn", 0, 64, False, "released", False),
               lambda d: b4.make_loss("I-I-PS", "svhn", network("alexnet", "semi_early", d), d, "sum", 1.0, False), svhn),
    }


@pytest.mark.parametrize("benchmark", ["b2", "b3", "b4"])
def test_training_steps_on_cuda_equal_the_same_steps_on_cpu(benchmark):
    build, loss_for, batch = benchmark_steps()[benchmark]
    cpu, cuda = steps_on("cpu", build, loss_for, batch), steps_on("cuda", build, loss_for, batch)
    assert cpu.keys() == cuda.keys()
    for name, value in cpu.items():
        torch.testing.assert_close(cuda[name], value, rtol=0, atol=STEP_TOLERANCE, msg=name)


@pytest.mark.parametrize("workers", [torch.cuda.device_count() or 1, (torch.cuda.device_count() or 1) + 1])
def test_each_grid_worker_sees_its_own_gpu_and_extra_workers_share(workers):
    from dplib.run.executors import _worker_environments  # was dplib.run.grid's (issue 37)

    probe = "import torch; print(torch.cuda.device_count(), torch.cuda.get_device_properties(0).uuid)"
    seen = []
    for env in _worker_environments(workers):
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                             check=True).stdout.split()
        assert out[0] == "1"  # one GPU visible to each worker
        seen.append(out[1])
    gpus = torch.cuda.device_count()
    assert len(set(seen)) == min(workers, gpus)  # distinct GPUs first, then shared in turn
