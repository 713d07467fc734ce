"""dplib.extended and the registry: any network as a loss network, with the guarantees the
paper's 14 have (frozen, always eval, input untouched, one pass, nothing after the deepest
point, clear errors, the minimum input size found and enforced), checked against torchvision."""

import pytest
import torch
from torch import nn
import torchvision

import dplib
from dplib.extended import EXTENDED
from dplib.lossnets import REGISTRY, LossNetwork


@pytest.mark.parametrize("arch", EXTENDED)
def test_every_extended_network_keeps_the_loss_network_guarantees(arch):
    net = LossNetwork(arch, points=dplib.POINTS, weights=None)
    holder = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    holder.loss_network = net
    holder.train()
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    before, buffers = x.detach().clone(), [b.clone() for b in net.buffers()]
    features = net(x)
    assert list(features) == list(dplib.POINTS) and all(f.ndim == 4 and f.shape[0] == 2 for f in features.values())
    sum(f.sum() for f in features.values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(x.detach(), before)  # the input is not changed in place
    assert all(torch.equal(a, b) for a, b in zip(buffers, net.buffers()))  # no statistics drift
    # one pass for all points equals each point alone; nothing after the deepest point is kept
    with torch.no_grad():
        for point in dplib.POINTS:
            alone = LossNetwork(arch, points=point, weights=None)
            torch.testing.assert_close(alone(x.detach())[point], features[point].detach(), rtol=1e-5, atol=1e-5)
    early = LossNetwork(arch, points="early", weights=None)
    assert sum(p.numel() for p in early.parameters()) < sum(p.numel() for p in net.parameters())
    # the minimum input: found by probing, enforced, and one pixel less gives nothing
    size = net.min_input_size
    assert net(torch.rand(1, 3, size, size))["late"].numel() > 0
    if size > 1:
        with pytest.raises(ValueError, match="too small"):
            net(torch.rand(1, 3, size - 1, size - 1))


@pytest.mark.parametrize("arch, nodes", [
    ("convnext_tiny", ("features.1", "features.3", "features.5", "features.7")),
    ("regnet_y_400mf", ("trunk_output.block1", "trunk_output.block2", "trunk_output.block3", "trunk_output.block4")),
    ("mobilenet_v3_large", ("features.3", "features.6", "features.12", "features.15")),
])
def test_the_points_are_the_stage_outputs_of_torchvisions_network(arch, nodes):
    model = torchvision.models.get_model(arch).eval()
    outputs = {}
    for node in nodes:
        model.get_submodule(node).register_forward_hook(lambda m, i, o, node=node: outputs.setdefault(node, o))
    net = LossNetwork(arch, dplib.POINTS, weights=None, normalize_input=False)
    net.extractor.load_state_dict(model.state_dict(), strict=False)
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        model(x)
        ours = net(x)
    for point, node in zip(dplib.POINTS, nodes):
        torch.testing.assert_close(ours[point], outputs[node])
    strides = [96 // ours[p].shape[-1] for p in dplib.POINTS]
    assert strides == [4, 8, 16, 32]  # the rule: the last block at strides 4, 8, 16, 32


def test_vit_points_are_blocks_3_6_9_12_as_maps_and_equal_torchvisions_at_224():
    vit = torchvision.models.vit_b_16().eval()
    tokens = {}
    for i in (2, 5, 8, 11):
        vit.encoder.layers[i].register_forward_hook(lambda m, a, o, i=i: tokens.setdefault(i, o))
    net = LossNetwork("vit_b_16", dplib.POINTS, weights=None, normalize_input=False)
    net.extractor.load_state_dict({k.replace("encoder.layers.", "blocks.").replace("encoder.pos_embedding",
                                                                                  "pos_embedding"): v
                                   for k, v in vit.state_dict().items()}, strict=False)
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        vit(x)
        ours = net(x)
    for point, i in zip(dplib.POINTS, (2, 5, 8, 11)):
        expected = tokens[i][:, 1:].transpose(1, 2).reshape(1, 768, 14, 14)  # class token dropped
        torch.testing.assert_close(ours[point], expected, rtol=1e-4, atol=1e-4)
    assert net(torch.rand(1, 3, 64, 96))["late"].shape == (1, 768, 4, 6)  # any size: positions interpolated


def test_swin_outputs_come_out_channels_first():
    model = torchvision.models.swin_t().eval()
    net = LossNetwork("swin_t", "mid", weights=None, normalize_input=False)
    net.extractor.load_state_dict(model.state_dict(), strict=False)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model.features[:6](x).permute(0, 3, 1, 2)  # (N, H, W, C) in torchvision
        torch.testing.assert_close(net(x)["mid"], expected)


def test_the_public_two_lines_with_an_extended_network():
    loss = dplib.PerceptualLoss("convnext_tiny", "mid", weights=None)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert loss(x, y).ndim == 0 and loss(x, y) > 0 and loss(x, x) == 0


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.down(x))
        return self.head(x.mean(dim=(2, 3)))


def test_a_custom_module_registered_by_fx_nodes_runs_through_benchmark_1(tmp_path, bapps_root):
    from dplib.benchmarks import b1
    from dplib.data.bapps import TwoAFCDataset
    from dplib.metrics import two_afc

    dplib.register_architecture("tiny", lambda weights, seed: Tiny(), {"shallow": "relu", "deep": "relu_1"},
                                family="mine", replace=True)
    try:
        assert [node for node, _ in dplib.list_points("tiny", size=32, show=False)][:3] == ["stem", "relu", "down"]
        net = LossNetwork("tiny", points=("deep", "shallow"), weights=None)
        assert net.points == ("shallow", "deep") and "head" not in dict(net.extractor.named_modules())
        distances = b1.pair_distances(net, TwoAFCDataset(bapps_root, "cnn"), "p0", "p1", reference="ref",
                                      batch_size=4, progress=False)
        d0, d1 = distances["deep"]
        assert len(d0) == 6 and 0 <= two_afc(d0, d1, TwoAFCDataset(bapps_root, "cnn").judge) <= 1
        with pytest.raises(ValueError, match="unknown extraction point.*choose from: shallow, deep"):
            LossNetwork("tiny", points="late", weights=None)
    finally:
        REGISTRY.pop("tiny", None)


def test_registration_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"\['layer9'\] are not nodes of the network; dplib.list_points"):
        dplib.register_architecture("bad", lambda weights, seed: Tiny(), {"x": "layer9"})
    with pytest.raises(ValueError, match="already registered"):
        dplib.register_architecture("vgg16", lambda weights, seed: Tiny(), {"x": "relu"})
    with pytest.raises(ValueError, match="unknown architecture 'resnet999'.*timm"):
        LossNetwork("resnet999")
    assert "bad" not in REGISTRY


def test_a_timm_model_is_a_loss_network():
    pytest.importorskip("timm", reason="timm is the optional extra dplib[timm]")
    net = LossNetwork("timm:resnet18", points=dplib.POINTS, weights=None)
    features = net(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in features.values()] == [64, 128, 256, 512]  # its four stages
    assert [64 // f.shape[-1] for f in features.values()] == [4, 8, 16, 32]


def test_attributes_of_registered_networks(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLIB_CACHE", str(tmp_path))
    from dplib.attributes import attributes_table

    table = attributes_table.__wrapped__(96, architectures=("convnext_tiny", "alexnet"))
    convnext = table[table.arch == "convnext_tiny"].set_index("point")
    documented = torchvision.models.get_model_weights("convnext_tiny")["IMAGENET1K_V1"].meta
    assert convnext.imagenet_top1.iloc[0] == documented["_metrics"]["ImageNet-1K"]["acc@1"]
    assert list(convnext.channels) == [96, 192, 384, 768] and convnext.family.iloc[0] == "ConvNeXt"
    assert convnext.point_mflops.is_monotonic_increasing and len(table) == 8


def test_a_builder_of_weights_only_is_taken_and_one_of_nothing_is_refused_at_registration():
    """The earlier contract was build(weights); the registry now calls build(weights, seed) and
    passes seed only to a builder that takes it. A builder of no argument is refused at once."""
    seen = []
    try:
        dplib.register_architecture("tiny_old", lambda weights=None: seen.append(weights) or Tiny(),
                                    {"shallow": "relu"}, replace=True)
        dplib.register_architecture("tiny_new", lambda weights, seed: seen.append((weights, seed)) or Tiny(),
                                    {"shallow": "relu"}, replace=True)
        seen.clear()
        assert LossNetwork("tiny_old", "shallow", weights=None)(torch.rand(1, 3, 32, 32))["shallow"].shape[1] == 8
        assert LossNetwork("tiny_new", "shallow", weights=None, seed=3)(torch.rand(1, 3, 32, 32))["shallow"].ndim == 4
        assert seen == [None, (None, 3)]
        with pytest.raises(ValueError, match=r"tiny_bad: build must take \(weights, seed\) or \(weights\), e.g. "
                                             r"`def build\(weights, seed\)"):
            dplib.register_architecture("tiny_bad", lambda: Tiny(), {"shallow": "relu"})
        assert "tiny_bad" not in REGISTRY
    finally:
        for name in ("tiny_old", "tiny_new", "tiny_bad"):
            REGISTRY.pop(name, None)
