"""dplib.losses against the lpips package and hand-computed cases."""

import pytest
import torch

from conftest import LPIPS_LAYERS, lpips_baseline_and_ours
from dplib.lossnets import LossNetwork
from dplib.losses import PerceptualLoss, feature_loss, perceptual_distance, perceptual_sse, unit_normalize


@pytest.mark.parametrize("net_name", ["alex", "vgg", "squeeze"])
def test_distance_equals_lpips_baseline(net_name):
    reference, ours = lpips_baseline_and_ours(net_name)
    x0, x1 = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        _, per_layer = reference(x0, x1, retPerLayer=True, normalize=True)
        ours_distance = perceptual_distance(ours(x0), ours(x1))
    wanted = [LPIPS_LAYERS[net_name].index(i) for i in sorted(ours.point_at_layer)]
    expected = sum(per_layer[k].flatten() for k in wanted)
    torch.testing.assert_close(ours_distance, expected, rtol=1e-5, atol=1e-6)


def test_distance_is_zero_for_identical_and_symmetric():
    net = LossNetwork("alexnet", ("early", "late"), weights=None)
    x, y = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    fx, fy = net(x), net(y)
    assert torch.all(perceptual_distance(fx, fx) == 0)
    torch.testing.assert_close(perceptual_distance(fx, fy), perceptual_distance(fy, fx))


def test_distance_hand_computed():
    # one point, one 1x2 feature map, 2 channels: z = unit vectors
    a = torch.tensor([[[[3.0, 0.0]], [[4.0, 1.0]]]])  # positions: (3,4) -> (.6,.8); (0,1) -> (0,1)
    b = torch.tensor([[[[0.0, 2.0]], [[5.0, 0.0]]]])  # positions: (0,1); (1,0)
    # squared distances per position: (.6^2 + .2^2) = .4 ; (1 + 1) = 2 ; mean over 2 positions = 1.2
    torch.testing.assert_close(perceptual_distance(a, b), torch.tensor([1.2]))
    torch.testing.assert_close(perceptual_distance({"p": a}, {"p": b}, point_weights={"p": 0.5}), torch.tensor([0.6]))


def test_zero_features_give_finite_gradients():
    a = torch.zeros(1, 4, 3, 3, requires_grad=True)
    b = torch.rand(1, 4, 3, 3)
    perceptual_distance(a, b).sum().backward()
    assert torch.isfinite(a.grad).all()
    assert torch.isfinite(unit_normalize(torch.zeros(1, 2, 1, 1))).all()


def test_feature_loss_is_eq3_and_sums_points_eq5():
    a, b = torch.rand(2, 5, 4, 4), torch.rand(2, 5, 4, 4)
    expected = ((a - b) ** 2).sum() / (5 * 4 * 4) / 2  # 1/(CHW) ||.||^2, batch mean
    torch.testing.assert_close(feature_loss(a, b), expected)
    c, d = torch.rand(2, 3, 2, 2), torch.rand(2, 3, 2, 2)
    torch.testing.assert_close(feature_loss({"x": a, "y": c}, {"x": b, "y": d}),
                               feature_loss(a, b) + feature_loss(c, d))
    assert feature_loss(a, b, reduction="none").shape == (2,)


def test_perceptual_sse_is_eq6_and_the_released_mse():
    a, b = torch.rand(2, 3, 2, 2), torch.rand(2, 3, 2, 2)
    torch.testing.assert_close(perceptual_sse(a, b), ((a - b) ** 2).sum() / 2)  # summed per image, batch mean
    torch.testing.assert_close(perceptual_sse(a, b, sigmoid=True),
                               ((torch.sigmoid(a) - torch.sigmoid(b)) ** 2).sum() / 2)
    torch.testing.assert_close(perceptual_sse(a, b, reduction="none"), ((a - b) ** 2).sum(dim=(1, 2, 3)))
    # "mean": the released code's nn.MSELoss() of the (sigmoid-squashed) features
    torch.testing.assert_close(perceptual_sse(a, b, sigmoid=True, reduction="mean"),
                               torch.nn.MSELoss()(torch.sigmoid(a), torch.sigmoid(b)))
    with pytest.raises(ValueError, match="choose sum, mean or none"):
        perceptual_sse(a, b, reduction="max")


def test_mismatched_features_are_refused():
    with pytest.raises(ValueError, match="points differ"):
        feature_loss({"a": torch.rand(1, 1, 1, 1)}, {"b": torch.rand(1, 1, 1, 1)})
    with pytest.raises(ValueError, match="shape"):
        perceptual_distance(torch.rand(1, 2, 3, 3), torch.rand(1, 2, 4, 4))


def test_perceptual_loss_module_trains_a_model_and_keeps_network_frozen():
    torch.manual_seed(0)
    loss_fn = PerceptualLoss("vgg11", "early", weights=None)
    model = torch.nn.Conv2d(3, 3, 3, padding=1)
    target = torch.rand(2, 3, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(20):
        loss = loss_fn(model(target.clamp(0, 1) * 0.5), target)
        first = first if first is not None else loss.item()
        optimizer.zero_grad(); loss.backward(); optimizer.step()
    assert loss.item() < first
    assert not any(p.requires_grad for p in loss_fn.network.parameters())
    precomputed = loss_fn.network(target)
    torch.testing.assert_close(loss_fn(target * 0.5, target_features=precomputed), loss_fn(target * 0.5, target))
    distance = PerceptualLoss("vgg11", "early", kind="distance", weights=None)(target, target.flip(0))
    assert distance.shape == (2,)
    with pytest.raises(ValueError, match="0-255"):
        loss_fn(target, target * 255)
    with pytest.raises(ValueError, match="kind"):
        PerceptualLoss("vgg11", "early", kind="l1", weights=None)


def test_perceptual_loss_refuses_what_it_cannot_use_when_it_is_built():
    with pytest.raises(TypeError, match="unexpected keyword argument 'reduce'"):
        PerceptualLoss("vgg11", "early", weights=None, reduce="sum")
    with pytest.raises(ValueError, match="point_weights .* kind='distance'"):
        PerceptualLoss("vgg11", "early", weights=None, point_weights={"early": 1.0})
    with pytest.raises(ValueError, match="one weight per point"):
        PerceptualLoss("vgg11", ("early", "late"), "distance", weights=None, point_weights={"early": 1.0})
    # network weights and per-point weights side by side
    both = PerceptualLoss("vgg11", ("early", "late"), "distance", weights=None, point_weights={"early": 2.0, "late": 0})
    early = PerceptualLoss("vgg11", "early", "distance", weights=None)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(both(x, y), 2 * early(x, y))
