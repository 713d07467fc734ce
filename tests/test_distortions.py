"""dplib.data.distortions: stronger distortions move further from the original."""

import pytest
import torch

from dplib.data.distortions import DISTORTIONS, distort
from dplib.benchmarks.tutorials import sample_image


@pytest.mark.parametrize("kind", sorted(DISTORTIONS))
def test_stronger_is_further_and_stays_in_range(kind):
    image = sample_image(64)
    errors = []
    for strength in (0.1, 0.5, 1.0):
        out = distort(image, kind, strength, seed=3)
        assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
        errors.append((out - image).pow(2).mean().item())
    assert errors[0] < errors[1] < errors[2]


def test_hand_computed_cases():
    halves = torch.zeros(1, 3, 4, 4)
    halves[..., 2:] = 1.0                                    # mean 0.5
    # contrast s: x (1 - 0.8 s) + mean 0.8 s -> at s = 0.5: 0 -> 0.2, 1 -> 0.8
    contrasted = distort(halves, "contrast", 0.5)
    assert contrasted[..., :2].unique().tolist() == pytest.approx([0.2]) and contrasted[..., 2:].unique().tolist() == pytest.approx([0.8])
    # colour s: channel gains 1 + s (0.6, -0.4, 0.3) -> on grey 0.5 at s = 1: 0.8, 0.3, 0.65
    coloured = distort(torch.full((1, 3, 2, 2), 0.5), "color", 1.0)
    assert coloured[0, :, 0, 0].tolist() == pytest.approx([0.8, 0.3, 0.65])
    # a blur leaves a constant image constant; noise is zero-mean with std 0.35 s, the same for a seed
    flat = torch.full((1, 3, 32, 32), 0.5)
    torch.testing.assert_close(distort(flat, "blur", 1.0), flat)
    noisy = distort(flat, "noise", 0.5, seed=1) - flat
    assert abs(noisy.mean().item()) < 0.01 and noisy.std().item() == pytest.approx(0.175, rel=0.05)
    assert torch.equal(distort(flat, "noise", 0.5, seed=1), distort(flat, "noise", 0.5, seed=1))
    assert not torch.equal(distort(flat, "noise", 0.5, seed=1), distort(flat, "noise", 0.5, seed=2))


def test_unknown_distortion():
    with pytest.raises(ValueError, match="blur"):
        distort(sample_image(32), "swirl", 0.5)
