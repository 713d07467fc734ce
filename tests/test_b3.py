"""dplib.benchmarks.b3: Benchmark 3's loss and scores."""

import math

import numpy as np
import pytest
import torch

from dplib.benchmarks import b3
from dplib.data import roads
from dplib.lossnets import LossNetwork
from dplib.metrics import delineation_scores
from dplib.models import IterativeUNet


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = roads.write_fixture(tmp_path_factory.mktemp("roads"), counts=(("test", 3),))
    return roads.RoadTiles(root, "test", 32, False)


def evaluate(model, tiles, slacks=(0, 3), iterations="last", batch_statistics=False):
    """b3.evaluate with the B3 notebook's other defaults written out (threshold 0.3, the test split)."""
    return b3.evaluate(model, tiles, "cpu", "vgg11", "early", 0.3, slacks, iterations, "test", batch_statistics)


class FixedIterations(torch.nn.Module):
    """A stand-in U-Net whose iterations predict fixed probabilities (as logits)."""

    def __init__(self, *probabilities):
        super().__init__()
        self.logits = [torch.logit(torch.tensor(p)) for p in probabilities]
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, images):
        return [torch.full((len(images), 1, 2, 2), float(l)) + self.anchor for l in self.logits]


class PixelsAsFeatures(torch.nn.Module):
    """A stand-in loss network whose features are the image itself."""

    def forward(self, x, check_range=True):
        return {"p": x}


def test_iteration_weights_on_a_two_iteration_example():
    # masks [1, 0, 1, 0]; iteration 1 predicts 0.5 everywhere, iteration 2 predicts 0.75.
    masks = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    bce_1, bce_2 = math.log(2), (-math.log(0.75) - math.log(0.25)) / 2
    eq5_1, eq5_2 = 0.25, (0.25**2 + 0.75**2) / 2        # mean squared difference of the pixels
    loss_1, loss_2 = bce_1 + 0.1 * eq5_1, bce_2 + 0.1 * eq5_2
    model, network = FixedIterations(0.5, 0.75), PixelsAsFeatures()
    batch = (torch.zeros(1, 3, 2, 2), masks)
    linear = b3.make_loss(network, 0.1, "cpu", weights="linear")(model, batch)
    equal = b3.make_loss(network, 0.1, "cpu", weights="equal")(model, batch)
    assert linear.item() == pytest.approx(loss_1 / 3 + 2 * loss_2 / 3)  # (i) / (1 + 2): the authors' code
    assert equal.item() == pytest.approx((loss_1 + loss_2) / 2)
    assert b3.iteration_weights(3) == pytest.approx([1 / 6, 2 / 6, 3 / 6])
    with pytest.raises(ValueError, match="iteration weights 'quadratic'; choose one of linear, equal"):
        b3.make_loss(network, 0.1, "cpu", weights="quadratic")


def test_the_loss_reaches_the_unet_and_never_the_loss_network(tiles):
    torch.manual_seed(0)
    model = IterativeUNet(iterations=3, unet="released")
    network = LossNetwork("vgg11", "early", weights=None)
    loss = b3.make_loss(network, 0.01, "cpu")(model, (tiles.images.float() / 255, tiles.masks.float() / 255))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters()) and all(p.grad is None for p in network.parameters())


def test_validation_scores_the_last_iterations_bce_or_the_loss():
    masks = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)

    class Split:
        images = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
        masks_ = (masks * 255).to(torch.uint8)

        def __len__(self):
            return 1

    Split.masks = Split.masks_
    model, network = FixedIterations(0.5, 0.75), PixelsAsFeatures()
    loss_fn = b3.make_loss(network, 0.1, "cpu")
    last_bce = b3.make_validation(loss_fn, Split(), "cpu", "last_bce", 2, 8)(model)
    assert last_bce == pytest.approx((-math.log(0.75) - math.log(0.25)) / 2)
    assert b3.make_validation(loss_fn, Split(), "cpu", "loss", 2, 8)(model) == pytest.approx(
        loss_fn(model, (torch.zeros(1, 3, 2, 2), masks)).item())


def test_mu_zero_never_runs_the_loss_network(tiles):
    model = IterativeUNet(iterations=2, base_channels=4, levels=2)

    class Forbidden(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise AssertionError("the loss network ran with mu = 0")

    b3.make_loss(Forbidden(), 0.0, "cpu")(model, (tiles.images.float() / 255, tiles.masks.float() / 255))


def test_evaluate_scores_the_last_iteration_per_image_in_percent(tiles):
    torch.manual_seed(0)
    model = IterativeUNet(iterations=2, base_channels=4, levels=2, unet="standard")
    rows, probabilities = evaluate(model, tiles, slacks=(0, 3))
    assert probabilities.shape == (2, 3, 1, 32, 32)
    masks = tiles.masks.float()[:, 0] / 255
    for slack, suffix in ((0, ""), (3, "_slack3")):
        expected = delineation_scores(probabilities[-1, :, 0], masks, threshold=0.3, slack=slack)
        for name, values in expected.items():
            value = next(r["value"] for r in rows if r["score"] == name + suffix)
            if np.isnan(values).all():
                assert np.isnan(value)
            else:
                assert value == pytest.approx(100 * np.nanmean(values))


def test_the_authors_accumulated_iteration_scores_on_a_hand_built_case():
    # One 8 x 8 tile with a road on row 3. Iteration 1 finds half the road, iteration 2 all of it.
    # The authors' loop adds, after iteration k, the scores of iterations 1..k: 2 x s1 + 1 x s2.
    class Tile:
        images = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
        masks = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)

    Tile.masks[0, 0, 3] = 255
    half, whole = torch.full((1, 1, 8, 8), -10.0), torch.full((1, 1, 8, 8), -10.0)
    half[0, 0, 3, :4] = 10.0
    whole[0, 0, 3] = 10.0
    model = lambda images: [half, whole]  # noqa: E731
    model.eval = lambda: None
    rows, _ = evaluate(model, Tile, slacks=(0,), iterations="accumulated")
    values = {r["score"]: r["value"] for r in rows}
    assert values["completeness"] == pytest.approx(100 * (2 * 0.5 + 1.0))
    assert values["correctness"] == pytest.approx(100 * (2 * 1.0 + 1.0))
    last, _ = evaluate(model, Tile, slacks=(0,))
    assert {r["score"]: r["value"] for r in last}["completeness"] == pytest.approx(100.0)


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
    rows, _ = evaluate(Oracle(Tiles.masks.float() / 255), Tiles)
    assert all(r["value"] == pytest.approx(100) for r in rows)


def test_validation_applies_the_training_k_as_the_released_code_did(tiles):
    """Trained with K = 1 (the released code), validation scored that one iteration: the model
    then applied once, not its test K of 3."""
    torch.manual_seed(0)
    model = IterativeUNet(iterations=3, train_iterations=1, unet="released").eval()
    images, masks = tiles.images.float() / 255, tiles.masks.float() / 255
    with torch.no_grad():
        once = model.unet(torch.cat([images, torch.zeros_like(images[:, :1])], dim=1))  # iteration 1 by hand
        thrice = model(images)[-1]
    loss_fn = b3.make_loss(PixelsAsFeatures(), 0.0, "cpu")
    scored = b3.make_validation(loss_fn, tiles, "cpu", "last_bce", 1, 8)(model)
    assert scored == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(once, masks).item(), rel=1e-6)
    assert scored != pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(thrice, masks).item(),
                                   rel=1e-3)
    assert len(model(images)) == 3  # eval mode outside validation: the test K


def test_test_batch_statistics_is_the_released_test_without_eval(tiles):
    """The released test.py never called unet.eval(): batch norm normalised each tile (batch 1)
    by its own statistics; the running statistics stay as trained."""
    torch.manual_seed(0)
    model = IterativeUNet(iterations=2, unet="released")
    model.train()
    model(torch.rand(8, 3, 32, 32))  # running statistics away from their initial values
    state = {k: v.clone() for k, v in model.state_dict().items()}
    _, eval_probabilities = evaluate(model, tiles)
    _, released = evaluate(model, tiles, batch_statistics=True)
    model.train()
    with torch.no_grad():
        by_hand = [torch.sigmoid(model(tiles.images[i:i + 1].float() / 255)[-1]) for i in range(len(tiles))]
    torch.testing.assert_close(released[-1], torch.cat(by_hand))
    assert not torch.allclose(released, eval_probabilities)
    model.load_state_dict(state)  # the comparison above moved them; evaluate itself left them as they were
    _, again = evaluate(model, tiles, batch_statistics=True)
    torch.testing.assert_close(again, released)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

