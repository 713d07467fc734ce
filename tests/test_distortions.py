"""dplib.data.distortions: stronger distortions move further from the original."""

import pytest
import torch

from dplib.data.distortions import DISTORTIONS, distort
from dplib.walkthrough import sample_image


@pytest.mark.parametrize("kind", sorted(DISTORTIONS))
def test_stronger_is_further_and_stays_in_range(kind):
    image = sample_image(64)
    errors = []
    for strength in (0.1, 0.5, 1.0):
        out = distort(image, kind, strength, seed=3)
        assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
        errors.append((out - image).pow(2).mean().item())
    assert errors[0] < errors[1] < errors[2]
    torch.testing.assert_close(distort(image, kind, 0.5, seed=3), distort(image, kind, 0.5, seed=3))


def test_unknown_distortion():
    with pytest.raises(ValueError, match="blur"):
        distort(sample_image(32), "swirl", 0.5)
