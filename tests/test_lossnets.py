"""dplib.lossnets: the 56 loss networks of Table II."""

import urllib.error

import pytest
import torch

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # torchvision's ImageNet statistics
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
import torchvision

import dplib
from dplib.lossnets import ARCHITECTURES, EXTRACTION_POINTS, MIN_INPUT_SIZE, POINTS, LossNetwork, build_classifier

# Channels at (early, semi_early, mid, late), from the architectures' papers and torchvision's
# definitions: written out by hand, not computed by dplib.
CHANNELS = {
    "vgg11": (64, 128, 256, 512), "vgg16": (64, 128, 256, 512), "vgg16_bn": (64, 128, 256, 512),
    "vgg19": (64, 128, 256, 512), "resnet18": (64, 64, 128, 512), "resnet50": (64, 256, 512, 2048),
    "resnext50_32x4d": (64, 256, 512, 2048), "googlenet": (64, 256, 512, 1024),
    "inception_v3": (64, 256, 288, 768), "efficientnet_b0": (32, 16, 80, 320),
    "efficientnet_b7": (64, 32, 160, 640), "alexnet": (64, 192, 384, 256),
    "densenet121": (64, 256, 512, 1024), "squeezenet1_1": (64, 128, 256, 512),
}


def test_registry_is_the_papers_grid():
    assert len(ARCHITECTURES) == 14 and POINTS == ("early", "semi_early", "mid", "late")
    assert set(EXTRACTION_POINTS) == set(ARCHITECTURES) == set(CHANNELS)
    assert all(list(v) == sorted(v) for v in EXTRACTION_POINTS.values())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_all_points_build_and_give_the_papers_channels(arch):
    net = LossNetwork(arch, points=POINTS, weights=None)
    assert len(net.layers) == EXTRACTION_POINTS[arch][-1] + 1  # nothing after the deepest point
    for size in (64, 96, 224):
        with torch.no_grad():
            features = net(torch.rand(2, 3, size, size))
        assert list(features) == list(POINTS)
        for point, channels in zip(POINTS, CHANNELS[arch]):
            assert features[point].shape[:2] == (2, channels), (arch, point, size)
            assert features[point].shape[2] >= 1 and torch.isfinite(features[point]).all()


@pytest.mark.parametrize("arch", ["alexnet", "vgg16_bn", "resnet18", "inception_v3"])
def test_one_pass_equals_separate_truncated_networks(arch):
    x = torch.rand(2, 3, 96, 96)
    together = LossNetwork(arch, points=POINTS, weights=None)
    with torch.no_grad():
        all_features = together(x)
        for point in POINTS:
            alone = LossNetwork(arch, points=point, weights=None)
            assert len(alone.layers) <= len(together.layers)
            torch.testing.assert_close(alone(x)[point], all_features[point], rtol=0, atol=0)


def test_deepest_point_truncates_and_matches_torchvision():
    net = LossNetwork("resnet18", points="mid", weights=None)
    assert len(net.layers) == 6 and not any(isinstance(m, torch.nn.Linear) for m in net.modules())
    reference = build_classifier("resnet18", weights=None).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        normalized = (x - net.mean) / net.std
        expected = reference.layer2(reference.layer1(reference.maxpool(reference.relu(reference.bn1(reference.conv1(normalized))))))
        torch.testing.assert_close(net(x)["mid"], expected)


@pytest.mark.parametrize("arch, hooked", [("googlenet", "inception5b"), ("inception_v3", "Mixed_6e")])
def test_inception_transform_is_torchvisions_and_off_by_default_as_released(arch, hooked):
    reference = build_classifier(arch, weights=None).eval()
    assert reference.transform_input
    captured = []
    getattr(reference, hooked).register_forward_hook(lambda m, i, o: captured.append(o))
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        normalized = (x - IMAGENET_MEAN) / IMAGENET_STD
        reference(normalized)                           # torchvision's forward: transform_input applied
        reference.transform_input = False
        reference(normalized)                           # the children called directly, as the authors' code
        with_transform = LossNetwork(arch, points="late", weights=None, inception_transform=True)(x)["late"]
        released = LossNetwork(arch, points="late", weights=None)(x)["late"]
    torch.testing.assert_close(with_transform, captured[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(released, captured[1], rtol=1e-5, atol=1e-5)
    assert (released - with_transform).abs().max() > 1e-2 * released.abs().max()  # the transform matters


def test_normalize_input_false_feeds_the_raw_images():
    net = LossNetwork("alexnet", points="early", weights=None, normalize_input=False)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x)["early"], net.layers[1](net.layers[0](x)))


def test_frozen_always_eval_and_gradients_reach_the_input():
    net = LossNetwork("vgg16_bn", points=("early", "mid"), weights=None)
    trainer = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.BatchNorm2d(3))
    trainer.loss_network = net
    trainer.train()
    assert trainer.training and not net.training
    assert not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    stats_before = [b.clone() for b in net.buffers()]
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    x_before = x.detach().clone()
    sum(f.sum() for f in net(x).values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(stats_before, net.buffers()))  # batch norm did not drift
    assert torch.equal(x.detach(), x_before)  # input not changed in place


def test_random_weights_are_seeded():
    a = LossNetwork("alexnet", "early", weights=None, seed=1)
    b = LossNetwork("alexnet", "early", weights=None, seed=1)
    c = LossNetwork("alexnet", "early", weights=None, seed=2)
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def test_local_state_dict_is_loaded(tmp_path):
    source = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet.pth"
    torch.save(source.state_dict(), path)
    net = LossNetwork("alexnet", "semi_early", weights=str(path))
    assert torch.equal(net.layers[3].weight, source.features[3].weight)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LossNetwork("alexnet", "early", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="do not fit"):
        LossNetwork("vgg11", "early", weights=str(path))


def test_imagenet_weights_come_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = torchvision.models.get_model_weights("squeezenet1_1")["IMAGENET1K_V1"]
    cached = tmp_path / "hub" / "checkpoints" / entry.url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    source = torchvision.models.squeezenet1_1(weights=None)
    torch.save(source.state_dict(), cached)
    net = LossNetwork("squeezenet1_1", "early", weights="imagenet")
    assert torch.equal(net.layers[0].weight, source.features[0].weight)


def test_offline_without_cache_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno 111] Connection refused")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError) as error:
        LossNetwork("alexnet", "early", weights="imagenet")
    message = str(error.value)
    assert "alexnet-owt-7be5be79.pth" in message and str(tmp_path / "hub" / "checkpoints") in message


def test_unknown_architecture_and_point_list_the_valid_ones():
    with pytest.raises(ValueError, match="vgg16.*squeezenet1_1"):
        LossNetwork("vgg17", weights=None)
    with pytest.raises(ValueError, match="early, semi_early, mid, late"):
        LossNetwork("vgg16", points="middle", weights=None)


@pytest.mark.parametrize("bad, match", [
    (torch.rand(3, 32, 32), r"\(N, 3, H, W\)"),
    (torch.rand(2, 1, 32, 32), r"\(N, 3, H, W\)"),
    ((torch.rand(2, 3, 32, 32) * 255).to(torch.uint8), "float"),
    (torch.rand(2, 3, 32, 32) * 255, "0-255"),
    (torch.rand(2, 3, 32, 32) * 2 - 1, r"\[-1, 1\]"),
    ([[0.0]], "torch.Tensor"),
])
def test_bad_input_is_refused_with_a_clear_message(bad, match):
    net = LossNetwork("alexnet", "early", weights=None)
    with pytest.raises((ValueError, TypeError), match=match):
        net(bad)


def test_values_slightly_outside_unit_range_are_accepted():
    net = LossNetwork("alexnet", "early", weights=None)
    x = torch.rand(1, 3, 32, 32) * 1.2 - 0.1
    assert net(x)["early"].shape[1] == 64


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_minimum_input_size_is_exact_for_every_point(arch):
    for point, size in zip(POINTS, MIN_INPUT_SIZE[arch]):
        net = LossNetwork(arch, point, weights=None)
        with torch.no_grad():
            assert net(torch.rand(1, 3, size, size))[point].numel() > 0
            if size == 1:
                continue  # any image works: there is no smaller one to refuse
            with pytest.raises(ValueError, match="too small"):
                net(torch.rand(1, 3, size - 1, size - 1))
            net.min_input_size = 0  # the check is what stops it: one pixel less and the network itself fails
            try:
                empty = net(torch.rand(1, 3, size - 1, size - 1))[point].numel() == 0
            except RuntimeError:
                empty = True
            assert empty, (arch, point, size)


def test_public_api_two_lines():
    loss = dplib.PerceptualLoss("squeezenet1_1", "early", weights=None)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    value = loss(x, y)
    assert value.ndim == 0 and value > 0 and loss(x, x) == 0


def test_a_torchvision_weight_name_is_a_pretraining_and_offline_names_its_file(tmp_path, monkeypatch):
    # torchvision's documented weights of ResNet-50: IMAGENET1K_V1 (the paper's) and V2, whose
    # file is resnet50-11ad3fa6.pth (torchvision.models.ResNet50_Weights)
    from dplib.lossnets import weight_name, weight_names

    assert weight_names("resnet50") == ("IMAGENET1K_V1", "IMAGENET1K_V2")
    assert weight_names("vit_b_16") == ("IMAGENET1K_V1", "IMAGENET1K_SWAG_E2E_V1", "IMAGENET1K_SWAG_LINEAR_V1")
    assert weight_name("resnet50", "imagenet") == "IMAGENET1K_V1" and weight_name("resnet50", "x.pth") is None
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(RuntimeError, match="IMAGENET1K_V2 weights of resnet50.*resnet50-11ad3fa6.pth"):
        LossNetwork("resnet50", "early", weights="IMAGENET1K_V2")
    with pytest.raises(FileNotFoundError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        LossNetwork("resnet50", "early", weights="IMAGENET1K_V3")


def test_a_timm_pretrained_tag_is_a_pretraining(monkeypatch):
    timm = pytest.importorskip("timm")
    from dplib.extended import _timm_model

    made = []

    def create_model(name, pretrained=False):
        made.append((name, pretrained))
        return torch.nn.Identity()

    monkeypatch.setattr(timm, "create_model", create_model)
    _timm_model("resnet50", "a1_in1k", 0)                  # one of timm.list_pretrained("resnet50.*")
    _timm_model("resnet50.a1_in1k", "imagenet", 0)
    _timm_model("resnet50", None, 0)
    assert made == [("resnet50.a1_in1k", True), ("resnet50.a1_in1k", True), ("resnet50", False)]


def test_the_minimum_input_probe_finds_the_threshold_from_small_sizes_up():
    # a stand-in network that gives features from 37 px on, and records the sizes it was run on
    from dplib.lossnets import _probe_min_input

    def network(threshold):
        tried = []

        def model(x):
            tried.append(x.shape[-1])
            if x.shape[-1] < threshold:
                raise RuntimeError("input too small")
            return {"late": torch.zeros(1, 1, 1, 1)}
        return model, tried

    model, tried = network(37)
    assert _probe_min_input(model, ("late",)) == 37
    assert max(tried) == 64  # doubling 1, 2, ..., 64, then halving between 32 and 64: never a large input
    assert _probe_min_input(network(1)[0], ("late",)) == 1
    assert _probe_min_input(network(1024)[0], ("late",)) == 1024
    with pytest.raises(ValueError, match="no features even for 1024 px"):
        _probe_min_input(network(1025)[0], ("late",))
