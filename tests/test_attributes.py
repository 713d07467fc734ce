"""dplib.attributes against Table I of the paper (results/paper/architectures.csv)."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from dplib.attributes import _measure, attributes_table
from dplib.lossnets import ARCHITECTURES, POINTS

TABLE_I = pd.read_csv(Path(__file__).parents[1] / "results" / "paper" / "architectures.csv").set_index("arch")
# Where the traced depth differs from the printed one (see the attributes module docstring).
DEPTH_DIFFERS = {"inception_v3": 48, "efficientnet_b0": 82, "efficientnet_b7": 274}


@pytest.fixture(scope="module")
def table():
    return attributes_table(cache=False)


@pytest.fixture(scope="module")
def per_arch(table):
    return table.drop_duplicates("arch").set_index("arch")


def test_one_row_per_loss_network(table):
    assert len(table) == 56
    assert list(table.drop_duplicates("arch").arch) == list(ARCHITECTURES)
    assert set(table.point) == set(POINTS)


def test_imagenet_accuracy_is_table_one_except_efficientnet_b7(per_arch):
    for arch in ARCHITECTURES:
        if arch == "efficientnet_b7":  # torchvision's metadata: 84.122 at 600 px; Table I: 78.642
            assert per_arch.loc[arch, "imagenet_top1"] == pytest.approx(84.122)
        else:
            assert per_arch.loc[arch, "imagenet_top1"] == pytest.approx(TABLE_I.loc[arch, "imagenet_top1"], abs=1e-9)


def test_depth_is_table_one_where_it_follows_footnote_two(per_arch):
    for arch in ARCHITECTURES:
        expected = DEPTH_DIFFERS.get(arch, TABLE_I.loc[arch, "depth"])
        assert per_arch.loc[arch, "depth"] == expected, arch


def test_mflops_a_little_below_table_one(per_arch):
    # The paper's tool counted more than convolutions and matrix products: its values are
    # 0.4-3% higher, 5.5% for EfficientNet-B0 whose many small layers weigh more.
    for arch in ARCHITECTURES:
        ratio = TABLE_I.loc[arch, "mflops"] / per_arch.loc[arch, "mflops"]
        limit = 1.06 if arch == "efficientnet_b0" else 1.035
        assert 1.0 <= ratio <= limit, (arch, ratio)


def test_structural_attributes(per_arch):
    assert per_arch.loc["vgg16_bn", "batch_norm"] and not per_arch.loc["vgg16", "batch_norm"]
    assert per_arch.loc["squeezenet1_1", "conv1x1"] and not per_arch.loc["alexnet", "conv1x1"]
    for arch in ARCHITECTURES:
        paper = TABLE_I.loc[arch]
        if arch in ("resnet18", "googlenet", "efficientnet_b0", "efficientnet_b7"):
            continue  # marks damaged in the extraction, or torchvision's network differs (GoogLeNet has batch norm)
        for column in ("skip_connections", "branching", "conv1x1", "batch_norm"):
            if column == "conv1x1" and arch.startswith("efficientnet"):
                continue
            assert bool(per_arch.loc[arch, column]) == bool(paper[column]), (arch, column)


def test_per_point_attributes_grow_with_depth(table):
    for arch, rows in table.groupby("arch"):
        rows = rows.set_index("point").loc[list(POINTS)]
        assert rows.point_parameters.is_monotonic_increasing
        assert rows.point_depth.is_monotonic_increasing
        assert rows.point_mflops.is_monotonic_increasing
        assert (rows.parameter_fraction <= 1).all() and (rows.point_mflops <= rows.mflops).all()
    vgg16 = table[(table.arch == "vgg16") & (table.point == "early")].iloc[0]
    assert vgg16.channels == 64 and vgg16.features == 64 * 224 * 224
    assert vgg16.point_parameters == 3 * 64 * 9 + 64 + 64 * 64 * 9 + 64
    assert vgg16.point_depth == 2


def test_depth_tracer_counts_the_longest_branch():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3)
            self.long = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1))
            self.short = nn.Conv2d(4, 4, 1)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            x = self.stem(x)
            x = torch.relu(self.long(x) + self.short(x))
            return self.head(x.mean(dim=(2, 3)))

    macs, depth, _ = _measure(Branchy(), torch.rand(1, 3, 6, 6))
    assert depth == 4  # stem, long (2), head
    assert macs == 3 * 4 * 9 * 16 + 3 * (4 * 4 * 16) + 4 * 2


def test_disk_cache_round_trips(tmp_path, monkeypatch, table):
    monkeypatch.setenv("DPLIB_CACHE", str(tmp_path))
    import dplib.attributes as attributes

    monkeypatch.setattr(attributes, "_measure_table", lambda size: table)
    first = attributes.attributes_table.__wrapped__(224)
    assert len(list(tmp_path.iterdir())) == 1
    monkeypatch.setattr(attributes, "_measure_table", lambda size: pytest.fail("measured again"))
    pd.testing.assert_frame_equal(attributes.attributes_table.__wrapped__(224), first, check_dtype=False)


def test_too_small_input_is_refused_before_measuring():
    with pytest.raises(ValueError, match="input_size >= 75"):
        attributes_table(64, cache=False)
