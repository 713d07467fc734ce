"""dplib.benchmarks.b5, image denoising: the DnCNN as Zhang et al. describe it, the noise at its
stated sigma, the scores against scikit-image, the same data as Benchmark 2, and its smoke
grid through the runner."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dplib.benchmarks import b5, benchmark, check_rows
from dplib.run import grid, plan

from conftest import dplib_cli

ROOT = Path(__file__).parents[1]


def test_dncnn_has_zhang_et_als_layers_and_subtracts_its_noise_estimate():
    model = b5.DnCNN()  # DnCNN-S: 17 layers of 3x3, 64 channels, BN in layers 2..16, no bias before BN
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == 17 and len([m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]) == 15
    # by hand: 1,792 + 15 x 36,992 + 1,731 on RGB (on grey images the same sum is 556,097, DnCNN's 0.56M)
    expected = (3 * 64 * 9 + 64) + 15 * (64 * 64 * 9 + 2 * 64) + (64 * 3 * 9 + 3)
    assert sum(p.numel() for p in model.parameters()) == expected == 558_403
    torch.nn.init.zeros_(convolutions[-1].weight)
    torch.nn.init.zeros_(convolutions[-1].bias)
    x = torch.rand(2, 3, 20, 20)
    assert torch.equal(model(x), x)  # no noise estimated: the input itself


def test_the_noise_has_the_stated_sigma_and_is_the_same_for_every_run():
    clean = torch.full((1, 3, 256, 256), 0.5)
    noisy = b5.add_noise(clean, 25.0, b5.image_generator(42, 0))
    residual = (noisy - clean).flatten()
    # 196,608 draws: the sample std is within 1% of sigma (its standard error is sigma / sqrt(2n), 0.16%)
    assert abs(residual.std().item() * 255 / 25.0 - 1) < 0.01 and abs(residual.mean().item()) < 1e-3
    assert torch.equal(noisy, b5.add_noise(clean, 25.0, b5.image_generator(42, 0)))
    assert not torch.equal(noisy, b5.add_noise(clean, 25.0, b5.image_generator(42, 1)))
    with pytest.raises(ValueError, match="0-255 scale"):
        b5.check_sigma(0.1 / 255 * 0)


def test_b5_reads_benchmark_2s_sample_so_one_download_serves_both():
    from dplib.benchmarks import b2

    b5_defaults = plan.notebook_defaults(ROOT / "notebooks" / "b5_denoising.ipynb")
    b2_defaults = plan.notebook_defaults(ROOT / "notebooks" / "b2_super_resolution.ipynb")
    assert b5.data_needs(b5_defaults) == b2.data_needs(b2_defaults)


class Identity(torch.nn.Module):  # a "denoiser" that returns its noisy input
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


def test_the_scores_are_scikit_images_psnr_and_ssim_of_the_clamped_noisy_images(tmp_path):
    from dplib.data import superres

    root = superres.write_fixture(tmp_path / "superres")
    distances = []

    def distance(x, y):  # stands for the Eq. 1 metric: records what it was asked
        distances.append((x.shape, y.shape))
        return torch.tensor(0.25)

    rows, examples = b5.evaluate(Identity(), root, 25.0, 7, "cpu", "alexnet", "early", distance, sets=("Set5",))
    assert check_rows(benchmark("b5"), rows) == []
    values = {row["score"]: row["value"] for row in rows}
    psnrs, ssims = [], []
    for index, path in enumerate(sorted((root / "Set5").iterdir())):
        clean = np.asarray(superres.open_image(path), dtype=np.float64) / 255  # (H, W, 3)
        generator = torch.Generator().manual_seed(7 * 1_000_003 + index)  # PROTOCOL.md: seed x 1000003 + index
        noise = torch.randn((1, 3, *clean.shape[:2]), generator=generator)[0].permute(1, 2, 0).double().numpy()
        noisy = np.clip(clean + noise * 25 / 255, 0, 1)
        psnrs.append(peak_signal_noise_ratio(clean, noisy, data_range=1))
        ssims.append(structural_similarity(clean, noisy, data_range=1, channel_axis=2, gaussian_weights=True,
                                           sigma=1.5, use_sample_covariance=False))
    assert values["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-4)  # float32 noise in the benchmark
    assert values["ssim"] == pytest.approx(np.mean(ssims), abs=1e-4)
    assert values["distance"] == pytest.approx(0.25) and len(distances) == len(psnrs)
    assert 20.0 < values["psnr"] < 21.5  # 10 log10(255^2 / 25^2) = 20.17 dB, a little over it once clamped


def test_the_b5_smoke_grid_runs_and_collects_through_the_runner(tmp_path, smoke_params):
    from dplib.analysis.scores import load_results
    from dplib.analysis.tables import rank_table
    from dplib.data import superres

    path = smoke_params("b5", superres.write_fixture(tmp_path / "superres"),
                        {"arch": ["squeezenet1_1"], "point": ["early", "late"]})
    result = dplib_cli("grid", "run", str(path), "--smoke", "--workers", "2", "--runs-dir", str(tmp_path / "runs"),
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out, table = grid.collect(path, smoke=True, runs_dir=tmp_path / "runs", out=tmp_path / "results" / "b5.csv")
    assert set(table.state) == {"completed"} and len(table) == 2 * 3 * 3
    assert check_rows(benchmark("b5"), table.to_dict("records")) == []
    scores = load_results(tmp_path / "results")
    assert list(rank_table(scores).columns) == ["b5", "all"]
    record = json.loads(next((tmp_path / "runs" / "b5").glob("*/result.json")).read_text())
    assert record["params"]["sigma"] == 25.0 and record["training"]["step"] == 4


@pytest.mark.parametrize("pixel_weight", [0.0, 1.0])
def test_the_training_loss_is_eq3_plus_the_pixel_term_by_hand(pixel_weight):
    """make_loss with the noise it draws replayed: Eq. 3 (mean squared feature difference) plus
    pixel_weight x the pixel MSE; 0.0 is the feature loss alone."""
    from dplib import LossNetwork

    network = LossNetwork("alexnet", "early", weights=None)
    model = b5.DnCNN(3)
    clean = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    loss = b5.make_loss(network, 25.0, pixel_weight)(model, clean)
    torch.manual_seed(5)
    output = model(clean + torch.randn_like(clean) * 25 / 255)
    with torch.no_grad():
        by_hand = ((network(output, check_range=False)["early"] - network(clean)["early"]) ** 2).mean()
        by_hand = by_hand + pixel_weight * ((output - clean) ** 2).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


@pytest.mark.exercises(amp="bfloat16")
def test_a_b5_step_trains_under_bfloat16_autocast():
    from dplib import LossNetwork
    from dplib.train import fit

    network = LossNetwork("alexnet", "early", weights=None)
    model = b5.DnCNN(3)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    record = fit(model, b5.make_loss(network, 25.0, 1.0), images, lambda m: 0.0, iterations=2, batch_size=2,
                 amp="bfloat16", progress=False)
    assert record["step"] == 2 and not record["nan"]
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in model.parameters())
