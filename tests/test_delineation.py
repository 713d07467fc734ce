"""dplib.delineation: Benchmark 3's loss and scores."""

import numpy as np
import pytest
import torch

from dplib import delineation as b3
from dplib.data import roads
from dplib.lossnets import LossNetwork
from dplib.losses import feature_loss, pixel_bce
from dplib.metrics import delineation_scores
from dplib.models import IterativeUNet


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = roads.write_fixture(tmp_path_factory.mktemp("roads"), counts=(("test", 3),))
    return roads.RoadTiles(root, "test", size=32)


def test_loss_is_bce_plus_mu_times_eq5_averaged_over_iterations(tiles):
    torch.manual_seed(0)
    model = IterativeUNet(iterations=3, base_channels=4, levels=2)
    network = LossNetwork("vgg11", "early", weights=None)
    images, masks = tiles.images.float() / 255, tiles.masks.float() / 255
    loss = b3.make_loss(network, 0.01, "cpu")(model, (images, masks))
    outputs = model(images)
    expected = sum(pixel_bce(l, masks) + 0.01 * feature_loss(network(torch.sigmoid(l).expand(-1, 3, -1, -1)),
                                                             network(masks.expand(-1, 3, -1, -1)))
                   for l in outputs) / 3
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters()) and all(p.grad is None for p in network.parameters())


def test_mu_zero_never_runs_the_loss_network(tiles):
    model = IterativeUNet(iterations=2, base_channels=4, levels=2)

    class Forbidden(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise AssertionError("the loss network ran with mu = 0")

    b3.make_loss(Forbidden(), 0.0, "cpu")(model, (tiles.images.float() / 255, tiles.masks.float() / 255))


def test_evaluate_scores_the_last_iteration_per_image_in_percent(tiles):
    torch.manual_seed(0)
    model = IterativeUNet(iterations=2, base_channels=4, levels=2)
    rows, probabilities = b3.evaluate(model, tiles, "cpu", "vgg11", "early", slacks=(0, 3))
    assert probabilities.shape == (2, 3, 1, 32, 32)
    masks = tiles.masks.float()[:, 0] / 255
    for slack, suffix in ((0, ""), (3, "_slack3")):
        expected = delineation_scores(probabilities[-1, :, 0], masks, slack=slack)
        for name, values in expected.items():
            value = next(r["value"] for r in rows if r["score"] == name + suffix)
            if np.isnan(values).all():
                assert np.isnan(value)
            else:
                assert value == pytest.approx(100 * np.nanmean(values))


def test_perfect_predictions_score_100():
    class Oracle(torch.nn.Module):
        def __init__(self, masks):
            super().__init__()
            self.masks = masks

        def forward(self, images):
            return [torch.where(self.masks > 0.5, 10.0, -10.0)]

    class Tiles:
        images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
        masks = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)

    Tiles.masks[:, :, 3, :] = 255
    rows, _ = b3.evaluate(Oracle(Tiles.masks.float() / 255), Tiles, "cpu", "a", "early")
    assert all(r["value"] == pytest.approx(100) for r in rows)
