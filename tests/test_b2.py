"""dplib.benchmarks.b2: Benchmark 2's loss, validation (collapse) and test scores."""

import numpy as np
import pytest
import torch
from torch import nn

from dplib.benchmarks import b2
from dplib.data import superres
from dplib.lossnets import LossNetwork
from dplib.metrics import psnr, ssim
from dplib.models import TransformerNet


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return superres.write_fixture(tmp_path_factory.mktemp("superres"), train=4, validation=2)


class Bicubic(nn.Module):
    """A fixed upscaler: known outputs for checking the scoring."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False).clamp(0, 1)


def test_loss_trains_the_model_only():
    torch.manual_seed(0)
    network = LossNetwork("squeezenet1_1", "early", weights=None)
    model = TransformerNet(scale=4)
    loss_fn = b2.make_loss(network, 4, "cpu")
    hr = torch.rand(2, 3, 32, 32)
    assert loss_fn(model, (hr, superres.degrade(hr, 4))).item() == pytest.approx(loss_fn(model, hr).item())
    loss = loss_fn(model, hr)
    loss.backward()
    assert loss.ndim == 0 and loss > 0
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None for p in network.parameters())
    with_pixel = b2.make_loss(network, 4, "cpu", pixel_weight=1.0)(model, hr)
    assert with_pixel > loss.detach()


def test_evaluate_scores_are_psnr_and_ssim_of_the_test_images(root):
    rows, examples = b2.evaluate(Bicubic(4), root, 4, "cpu", "vgg16", "early", "matlab", "y", "whole", "pil", 288)
    table = {(r["score"], r["dataset"]): r["value"] for r in rows}
    assert set(table) == {(s, d) for s in ("psnr", "ssim") for d in ("set5", "set14", "bsd100")}
    images = superres.test_images(root, "Set14", 4, 288, "whole", "pil")
    expected = np.mean([psnr(Bicubic(4)(lr[None]), hr[None], crop_border=4)[0] for _, hr, lr in images])
    assert table[("psnr", "set14")] == pytest.approx(expected)
    expected = np.mean([ssim(Bicubic(4)(lr[None]), hr[None], crop_border=4)[0] for _, hr, lr in images])
    assert table[("ssim", "set14")] == pytest.approx(expected)
    assert all(r["scale"] == 4 and r["point"] == "early" and "border 4" in r["note"] and "whole" in r["note"]
               for r in rows)
    low, output, hr = examples["Set5"]
    assert output.shape == hr.shape and low.shape[-1] * 4 == hr.shape[-1]


def test_validation_detects_a_collapsed_model():
    images = list(torch.rand(3, 3, 32, 32))  # items of a validation set: hr alone ("torch" degradation)

    class Black(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 3, x.shape[2] * 4, x.shape[3] * 4)

    collapsed = b2.make_validation(images, 4, "cpu", "released", 2)(Black())
    healthy = b2.make_validation(images, 4, "cpu", "released", 2)(Bicubic(4))
    assert collapsed["collapsed"] and not healthy["collapsed"]
    assert healthy["score"] > collapsed["score"]


def test_the_released_convention_scores_each_image_as_the_released_test(root):
    from dplib.metrics import psnr_released, ssim_released

    rows, _ = b2.evaluate(Bicubic(4), root, 4, "cpu", "vgg16", "early", "released", "y", "whole", "pil", 288)
    images = superres.test_images(root, "Set5", 4, 288, "whole", "pil")
    outputs = [Bicubic(4)(lr[None]).clamp(0, 1) for _, _, lr in images]
    table = {(r["score"], r["dataset"]): r["value"] for r in rows}
    assert table[("psnr", "set5")] == pytest.approx(np.mean([psnr_released(o, hr[None])[0] for o, (_, hr, _)
                                                             in zip(outputs, images)]))
    assert table[("ssim", "set5")] == pytest.approx(np.mean([ssim_released(o, hr[None])[0] for o, (_, hr, _)
                                                             in zip(outputs, images)]))
    with pytest.raises(ValueError, match="channel 'rgb' goes with metric_convention 'matlab'"):
        b2.evaluate(Bicubic(4), root, 4, "cpu", "vgg16", "early", "released", "rgb", "whole", "pil", 288)


def test_the_released_validation_averages_batch_psnrs_weighted_by_batch_size(root):
    """The released eval_epoch: one torchmetrics PSNR per batch (PSNRs.update(psnr, batch size)),
    the validation score their weighted average."""
    from dplib.metrics import psnr_released_validation

    pairs = superres.CocoPairs(root, "train", count=3, scale=4, crop=32, crop_mode="resize_center", degradation="pil",
                               seed=0)
    validate = b2.make_validation(pairs, 4, "cpu", "released", batch_size=2)
    batches = [[pairs[0], pairs[1]], [pairs[2]]]
    values = []
    for batch in batches:
        hr, lr = (torch.stack(parts) for parts in zip(*batch))
        values.append(psnr_released_validation(Bicubic(4)(lr).clamp(0, 1), hr))
    assert validate(Bicubic(4))["score"] == pytest.approx((2 * values[0] + values[1]) / 3)



def test_every_image_score_is_a_declared_score_of_the_record():
    """Adding a metric to B2 is one place: IMAGE_SCORES gives the rows (evaluate), and the record
    declares exactly its scores, so every table that reads the record shows it."""
    import torch

    assert [s.name for s in b2.BENCHMARK.scores] == list(b2.IMAGE_SCORES)
    x = torch.rand(1, 3, 32, 32)
    for convention in b2.CONVENTIONS:
        assert set(b2.image_scores(x, x.clone(), 4, convention, "y")) == set(b2.IMAGE_SCORES)
