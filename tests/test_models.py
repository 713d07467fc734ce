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
    assert model.body[0].kernel_size == (9, 9) and model.body[-2].kernel_size == (9, 9)
    assert isinstance(model.body[-1], torch.nn.BatchNorm2d)  # batch norm before the tanh, as the authors' network
    assert [type(m).__name__ for m in TransformerNet(4, residual_blocks=4).body].count("ResidualBlock") == 4


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


def test_the_released_unet_layer_by_layer():
    from dplib.models.unet import ReleasedUNet

    model = ReleasedUNet(4).eval()
    shapes = []
    for block in list(model.down) + list(model.up):
        block.register_forward_hook(lambda module, args, out: shapes.append(tuple(out.shape[1:])))
        activation, convolution, norm = block
        assert type(activation) is torch.nn.ReLU  # the inverted switch: ReLU everywhere, no LeakyReLU
        assert convolution.kernel_size == (4, 4) and convolution.stride == (2, 2) and convolution.padding == (1, 1)
        assert convolution.bias is None and isinstance(norm, torch.nn.BatchNorm2d)
    with torch.no_grad():
        out = model(torch.rand(2, 4, 224, 224))
    assert shapes == [(8, 112, 112), (16, 56, 56), (32, 28, 28), (32, 14, 14),   # down: 2, 4, 8, 8 x the input's 4
                      (32, 28, 28), (16, 56, 56), (8, 112, 112), (1, 224, 224)]  # up, each after its skip
    assert [b[1].in_channels for b in model.up] == [32, 64, 32, 16] and out.shape == (2, 1, 224, 224)
    assert all(not isinstance(m, torch.nn.LeakyReLU) for m in model.modules())


@pytest.mark.parametrize("size, encoder_sides, decoder_sides", [
    (64, [31, 14, 6, 2], [5, 13, 30, 64]),   # (s - 4) / 2 + 1 per unpadded 4x4 stride-2 convolution;
    (96, [47, 22, 10, 4], [9, 21, 46, 96]),  # 2 (s - 1) + k per transposed convolution of kernel k = 5, 5, 6, 6
])
def test_the_released_autoencoder_layer_by_layer(size, encoder_sides, decoder_sides):
    from dplib.models.autoencoder import ReleasedImageDecoder, ReleasedImageEncoder

    encoder, decoder = ReleasedImageEncoder(size, 64, variational=True), ReleasedImageDecoder(size, 64)
    seen = []
    for module in list(encoder.body) + list(decoder.body):
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape[1:])))
    with torch.no_grad():
        mean, log_variance = encoder(torch.rand(2, 3, size, size))
        image = decoder(mean)
    assert seen[:4] == [(c, s, s) for c, s in zip((32, 64, 128, 256), encoder_sides)]
    assert seen[4:] == [(c, s, s) for c, s in zip((128, 64, 32, 3), decoder_sides)]
    assert encoder.mean.in_features == 256 * encoder_sides[-1] ** 2 and log_variance.shape == (2, 64)
    side = (size - 64) // 16 + 1  # g = 1 at 64 px, 3 at 96 px
    assert decoder.project[0].out_features == 1024 * side * side
    assert image.shape == (2, 3, size, size) and 0 <= image.min() and image.max() <= 1
    norms = [type(m).__name__ for m in encoder.body if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 4 and isinstance(decoder.body[-1], torch.nn.Sigmoid)
    with pytest.raises(ValueError, match="64 \\+ 16 k px"):
        ReleasedImageEncoder(72)


def test_the_feature_decoder_ends_in_a_sigmoid_only_for_squashed_features():
    from dplib.models.autoencoder import FeatureDecoder, feature_hidden_size

    assert feature_hidden_size(9408) == 2048 and feature_hidden_size(1000) == 500  # min(P / 2, 2048)
    plain, squashed = FeatureDecoder(100, 8, sigmoid=False), FeatureDecoder(100, 8, sigmoid=True)
    assert isinstance(plain.body[-1], torch.nn.Linear) and isinstance(squashed.body[-1], torch.nn.Sigmoid)
    with torch.no_grad():
        plain.body[-1].bias.fill_(-5.0)  # unsquashed features can be negative: so must the predictions
        assert plain(torch.zeros(1, 8)).max() < 0


def test_predictors_use_leaky_relu_as_the_authors():
    from dplib.models.autoencoder import mlp

    hidden = [m for m in mlp(16, (32, 8)) if not isinstance(m, torch.nn.Linear)]
    assert all(type(m) is torch.nn.LeakyReLU and m.negative_slope == 0.01 for m in hidden) and len(hidden) == 2
    assert all(type(m) is torch.nn.ReLU for m in mlp(16, (32,), activation="relu") if not isinstance(m, torch.nn.Linear))


def test_iterative_unet_feeds_back_its_previous_prediction():
    from dplib.models import IterativeUNet

    model = IterativeUNet(iterations=3, base_channels=4, levels=2, unet="standard").eval()
    seen = []
    model.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, 3:].clone()))
    with torch.no_grad():
        outputs = model(torch.rand(2, 3, 16, 16))
    assert len(outputs) == 3 and len(seen) == 3
    assert torch.all(seen[0] == 0)  # blank at the first iteration
    torch.testing.assert_close(seen[1], torch.sigmoid(outputs[0]))
    torch.testing.assert_close(seen[2], torch.sigmoid(outputs[1]))
    model.train()
    model.train_iterations = 1  # the released code's training
    assert len(model(torch.rand(2, 3, 16, 16))) == 1
