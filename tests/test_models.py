"""dplib.models: shapes, ranges and bad arguments."""

import pytest
import torch

from dplib.models import TransformerNet


@pytest.mark.parametrize("scale", [4, 8])
def test_transformer_net_upscales_any_size_into_unit_range(scale):
    model = TransformerNet(scale=scale).eval()
    for height, width in ((12, 12), (9, 17)):
        with torch.no_grad():
            out = model(torch.rand(2, 3, height, width))
        assert out.shape == (2, 3, height * scale, width * scale)
        assert out.min() >= 0 and out.max() <= 1


def test_transformer_net_has_five_residual_blocks_and_one_upsampling_per_factor_of_two():
    model = TransformerNet(scale=8)
    names = [type(m).__name__ for m in model.body]
    assert names.count("ResidualBlock") == 5 and names.count("Upsample") == 3
    assert model.body[0].kernel_size == (9, 9) and model.body[-1].kernel_size == (9, 9)


@pytest.mark.parametrize("scale", [1, 3, 6])
def test_transformer_net_refuses_other_scales(scale):
    with pytest.raises(ValueError, match="power of two"):
        TransformerNet(scale=scale)
