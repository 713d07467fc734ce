"""`dplib new-benchmark NAME`: a working benchmark of one's own, in a folder of its own.

It writes FOLDER/NAME/ with four files, each already wired to the rest of dplib:

    NAME.py        its code and its record (BENCHMARK = Benchmark(...): scores and their direction)
    NAME.ipynb     the notebook: the parameters contract (typed, documented: seed, data_root, weights,
                   device, out_dir, smoke knobs), training with checkpoints (dplib.train.fit), result.json
    NAME.yaml      the params file: the paper's 14 x 4 grid, time limits, a smoke block, Slurm resources
    test_NAME.py   tests of its code, on CPU

The task as written is real and runs as it is: restore images degraded by a 2 x 2 box blur with a
small residual network trained with one loss network's feature loss (Eq. 3) plus a pixel term,
on Benchmark 2's COCO sample, scored by PSNR and SSIM on Set5, Set14 and BSD100. Make it yours:
replace `degrade`, `Restorer`, the data and the scores, keeping the record, the functions the
grid calls and the parameters contract; `dplib benchmark check NAME` says what breaks it.
Benchmark 5 (image denoising, dplib/benchmarks/b5.py) began as this template.
"""

import re
from pathlib import Path

from ..notebook import write_notebook
from ..errors import InputError

MODULE = '''"""TITLE: a benchmark made with `dplib new-benchmark NAME`.

The task as written: restore images degraded by `degrade` (a 2 x 2 box blur) with `Restorer`, a
small residual network trained with the feature loss (Eq. 3) of one loss network plus a pixel MSE
term on Benchmark 2's seeded COCO sample, keeping the best validation PSNR; tested on Set5, Set14
and BSD100 by PSNR and SSIM. Replace degrade, Restorer, the data and the scores with your task's;
keep BENCHMARK, data_needs, steps, step_key, disk_bytes and check_parameters (the grid calls them).
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dplib.benchmarks import Benchmark, Score, check_choices, not_negative, positive
from dplib.benchmarks.record import score_row
from dplib.data import superres
from dplib.losses import feature_loss
from dplib.metrics import psnr, ssim

SETS = tuple(name.lower() for name in superres.TEST_SETS)
BENCHMARK = Benchmark(
    "NAME", "TITLE", "NAME", "NAME.ipynb", "NAME.yaml",
    ("superres",),                                     # the datasets its runs read (dplib data download ...)
    (Score("psnr", "higher", SETS, label="dB, RGB"),   # every score its runs write, and which way is better
     Score("ssim", "higher", SETS, label="RGB, 11 x 11 Gaussian window")),
    root=str(Path(__file__).parent),
)


def degrade(clean):
    """(N, 3, H, W) in [0, 1] -> the task's input: each 2 x 2 block averaged (H, W even)."""
    return F.interpolate(F.avg_pool2d(clean, 2), scale_factor=2, mode="nearest")


class Restorer(nn.Module):
    """(N, 3, H, W) degraded -> restored: the input plus a correction of `depth` 3x3 convolutions."""

    def __init__(self, depth=5, channels=32):
        super().__init__()
        layers = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, 3, 3, padding=1))
        self.correction = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.correction(x)


def make_loss(loss_network, pixel_weight):
    """loss(model, clean batch) = Eq. 3 feature loss of output vs clean + pixel_weight * MSE."""

    def loss_fn(model, batch):
        clean = batch.to(next(model.parameters()).device)  # (N, 3, crop, crop)
        output = model(degrade(clean))
        loss = feature_loss(loss_network(output, check_range=False), loss_network(clean))
        return loss + pixel_weight * torch.mean((output - clean) ** 2)

    return loss_fn


def make_validation(dataset, device):
    """validate(model) -> {"score": mean RGB PSNR of the validation images}."""
    clean = torch.stack([dataset[i] for i in range(len(dataset))])

    @torch.no_grad()
    def validate(model):
        output = torch.cat([model(degrade(c[None]).to(device)).float().clamp(0, 1).cpu() for c in clean])
        return {"score": float(np.mean(psnr(output, clean, channel="rgb")))}

    return validate


@torch.no_grad()
def evaluate(model, root, device, arch, point):
    """Score rows: PSNR and SSIM per test set (means over images, each cropped to even sides)."""
    model.eval()
    rows = []
    for name in superres.TEST_SETS:
        values = {"psnr": [], "ssim": []}
        for _, clean, _ in superres.test_images(root, name, 2, 0, "whole", "torch"):
            output = model(degrade(clean[None]).to(device)).float().clamp(0, 1).cpu()
            values["psnr"].append(psnr(output, clean[None], channel="rgb")[0])
            values["ssim"].append(ssim(output, clean[None], channel="rgb")[0])
        rows += [score_row("NAME", score, np.mean(v), dataset=name.lower(), arch=arch, point=point)
                 for score, v in values.items()]
    return rows


# ----- what the grid calls --------------------------------------------------------------------

def data_needs(parameters):
    """{dataset: what a run reads}: here Benchmark 2's seeded COCO sample and its test sets."""
    p = parameters
    return {"superres": superres.needs(p["seed"], p["train_images"], p["val_images"], p["crop"], "resize_center")}


def steps(parameters):
    """Optimizer steps of one run (the grid's time estimates)."""
    return parameters["iterations"]


def step_key(parameters):
    """Runs whose steps take the same time share a key (the device report measures one per key)."""
    return "NAME"


def disk_bytes(parameters):
    """(kept, while running) bytes on disk of one run: the checkpoint (model and Adam's moments)."""
    with torch.device("meta"):
        count = sum(p.numel() for p in Restorer(parameters["depth"]).parameters())
    return int(12 * count), 0


def check_parameters(parameters):
    """[(parameter, problem)] for values no run can use: the grid checks every run with it before
    any starts (device, precision, workers and batch size are checked for every benchmark)."""
    return check_choices(parameters, {"iterations": positive, "lr": positive, "depth": positive, "crop": positive,
                                      "train_images": positive, "val_images": positive, "val_every": positive,
                                      "pixel_weight": not_negative})
'''

TESTS = '''"""Tests of NAME.py, on CPU (pytest test_NAME.py)."""

import torch

import NAME as task
from dplib.benchmarks import check_record, check_rows


def test_the_record_keeps_the_contract():
    assert check_record(task.BENCHMARK) == []


def test_degrade_averages_each_2x2_block():
    clean = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).expand(1, 3, 2, 2)
    assert torch.allclose(task.degrade(clean), torch.full((1, 3, 2, 2), 0.25))


def test_an_untrained_restorer_keeps_the_shape_and_a_zero_correction_is_identity():
    model = task.Restorer(depth=3)
    x = torch.rand(2, 3, 16, 16)
    assert model(x).shape == x.shape
    torch.nn.init.zeros_(model.correction[-1].weight)
    torch.nn.init.zeros_(model.correction[-1].bias)
    assert torch.equal(model(x), x)


def test_score_rows_name_declared_scores():
    rows = [task.score_row("NAME", score, 1.0, dataset=dataset) for score in ("psnr", "ssim") for dataset in task.SETS]
    assert check_rows(task.BENCHMARK, rows) == []
'''

PARAMS = '''# TITLE: the paper's 14 architectures x 4 extraction points (no grid.yaml beside this file: the paper's grid).
benchmark: NAME
notebook: NAME.ipynb   # relative to this file
fixture: superres      # the tiny stand-in data `dplib data fixtures superres --root DIR` writes
parameters: {}         # the protocol is the notebook's defaults; set here only what differs
axes:
  arch: grid
  point: grid
timeouts:              # seconds; a run or a cell over its limit is killed and recorded failed (Timeout)
  cell_s: 86400
  run_s: 86400
smoke:                 # CPU-sized: random weights, the fixture, a few steps on small crops
  parameters:
    weights: null
    data_root: data/fixtures/superres
    iterations: 4
    val_every: 2
    train_images: 12
    val_images: 4
    crop: 64
    depth: 3
    num_workers: 0
    device: cpu
  timeouts: {cell_s: 300, run_s: 900}
  axes:
    arch: [alexnet, squeezenet1_1]
    point: [early, late]
slurm:
  gpus_per_node: 1
  cpus_per_task: 8
  mem_gb: 32
'''

CELLS = [
    ("markdown", """# TITLE

A benchmark made with `dplib new-benchmark NAME`: the task, its protocol and its scores are
NAME.py's docstring and record. Run its grid: `dplib grid run NAME.yaml` (smoke: `--smoke`);
check it: `dplib benchmark check NAME`; one run by hand:
`papermill NAME.ipynb out.ipynb -p arch vgg16 -p point early`""", None),
    ("code", '''arch: str = "vgg16"                    # one of dplib.ARCHITECTURES
point: str = "early"                   # extraction point: early, semi_early, mid or late
weights: "Optional[str]" = "imagenet"  # "imagenet", None (random, seeded) or a state-dict path
data_root: str = "data/superres"       # dplib data download superres --root data/superres
iterations: int = 20000                # optimizer steps
batch_size: int = 4                    # images per step
lr: float = 0.001                      # Adam learning rate
val_every: int = 2000                  # validate every N steps; the best validation PSNR is kept
train_images: int = 10000              # COCO-2014 train images drawn with the seed (smoke knob)
val_images: int = 100                  # COCO-2014 val images for model selection (smoke knob)
crop: int = 288                        # training image side (smoke knob)
depth: int = 5                         # convolutions of the restorer (smoke knob)
pixel_weight: float = 1.0              # weight of the pixel MSE term beside the feature loss
num_workers: int = 4                   # data-loading processes
device: str = "auto"                   # "auto", "cuda" or "cpu"
seed: int = 42                         # image sample, initialisation
out_dir: str = "runs/NAME/manual"      # checkpoint and result.json''', ["parameters"]),
    ("code", '''from dplib.benchmarks.record import notebook_parameters
parameters = notebook_parameters(globals())  # the parameters above, before anything else is defined
from dplib.notebook import resolve
data_root, out_dir = resolve(data_root), resolve(out_dir)

import random
from pathlib import Path
import pandas as pd
import torch
import dplib
import NAME as task
from dplib.benchmarks.record import Timer, plot_curve, write_result
from dplib.data import superres
from dplib.device import resolve_device
from dplib.train import fit

random.seed(seed)
torch.manual_seed(seed)
device = resolve_device(device)
timer = Timer()
Path(out_dir).mkdir(parents=True, exist_ok=True)''', None),
    ("code", '''with timer("data"):
    train_set = superres.CocoPairs(data_root, "train", count=train_images, scale=1, crop=crop,
                                   crop_mode="resize_center", degradation="torch", seed=seed)
    validation = superres.CocoPairs(data_root, "val", count=val_images, scale=1, crop=crop,
                                    crop_mode="resize_center", degradation="torch", seed=seed)
    superres.check_test_sets(data_root)  # fail now, not after training
model = task.Restorer(depth=depth).to(device)
loss_network = dplib.LossNetwork(arch, points=point, weights=weights, seed=seed).to(device)''', None),
    ("code", '''with timer("train"):  # checkpointed at every validation and on SIGTERM: a rerun resumes
    training = fit(model, task.make_loss(loss_network, pixel_weight), train_set, task.make_validation(validation, device),
                   iterations=iterations, batch_size=batch_size, lr=lr, validate_every=val_every or None,
                   device=device, seed=seed, num_workers=num_workers, checkpoint=Path(out_dir) / "checkpoint.pt",
                   description=f"{arch} {point}")
plot_curve(out_dir, title=f"{arch} {point}: training")  # out_dir/curve.png, from the metrics.jsonl fit appends to
with timer("test"):
    scores = task.evaluate(model, data_root, device, arch, point)
pd.DataFrame(scores)[["score", "dataset", "value"]]''', None),
    ("code", '''record = write_result(out_dir, "NAME", scores, params=parameters, timings=timer.seconds,
                      extra={"training": training})
print(f"{len(scores)} scores -> {Path(out_dir) / 'result.json'}")''', None),
]


def _fill(text, name, title):
    return text.replace("NAME", name).replace("TITLE", title)


def new_benchmark(name, folder="benchmarks", title=None):
    """Write folder/name/ (see the module docstring); returns its path. Refuses a bad name, a
    name dplib already knows, and a folder that exists (nothing is overwritten)."""
    from . import NAME_PATTERN, all_benchmarks

    if not re.fullmatch(NAME_PATTERN, name):
        raise InputError(f"a benchmark's name is its module's: lower-case letters, digits and _, starting with a "
                         f"letter (got {name!r})")
    if name in all_benchmarks():
        raise InputError(f"a benchmark called {name!r} exists already: choose another name")
    target = Path(folder) / name
    if target.exists():
        raise InputError(f"{target} exists: give another name or --dir")
    target.mkdir(parents=True)
    title = title or f"Benchmark {name}"
    (target / f"{name}.py").write_text(_fill(MODULE, name, title))
    (target / f"test_{name}.py").write_text(_fill(TESTS, name, title))
    (target / f"{name}.yaml").write_text(_fill(PARAMS, name, title))
    write_notebook(target / f"{name}.ipynb", [(kind, _fill(source, name, title), tags) for kind, source, tags in CELLS])
    return target
