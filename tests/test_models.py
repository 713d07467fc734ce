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


def test_unet_shapes_and_size_check():
    from dplib.models import UNet

    model = UNet(in_channels=4, base_channels=8, levels=3).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 4, 32, 48)).shape == (2, 1, 32, 48)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 4, 30, 32))


def test_iterative_unet_feeds_back_its_previous_prediction():
    from dplib.models import IterativeUNet

    model = IterativeUNet(iterations=3, base_channels=4, levels=2).eval()
    seen = []
    model.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, 3:].clone()))
    with torch.no_grad():
        outputs = model(torch.rand(2, 3, 16, 16))
    assert len(outputs) == 3 and len(seen) == 3
    assert torch.all(seen[0] == 0)  # blank at the first iteration
    torch.testing.assert_close(seen[1], torch.sigmoid(outputs[0]))
    torch.testing.assert_close(seen[2], torch.sigmoid(outputs[1]))
