"""Loss networks beyond the paper's 14: torchvision's ConvNeXt-T, ViT-B/16, Swin-T,
RegNetY-400MF and MobileNetV3-L, and any timm model ("timm:<name>").

The four points follow one rule, so that they mean the same in every network: the output
of the last block at strides 4, 8, 16 and 32 (early, semi_early, mid, late). ViT-B/16 works
at stride 16 throughout; its points are blocks 3, 6, 9 and 12 of 12.

ViT: the token outputs are turned into feature maps (N, C, H/16, W/16), the class token
dropped; the position embeddings (learned for 224 px) are interpolated bicubically to the
input's patch grid, so the network takes any image of at least 16 px, as the benchmarks
need (64 px in B1 and B4, 288 in B2).
"""

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import POINTS, build_classifier, load_weights, register_architecture, register_resolver
from .errors import InputError, Unavailable


class TokensToMap(nn.Module):
    """(N, 1 + h w, C) tokens -> (N, C, h, w), the class token dropped."""

    def forward(self, tokens, height, width):
        return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], height, width)


class AnySizeViT(nn.Module):
    """torchvision's VisionTransformer for any input size: maps.i is block i's output as a
    feature map (module docstring). The classification head is not run."""

    def __init__(self, vit):
        super().__init__()
        self.patch_size = vit.patch_size
        self.conv_proj, self.class_token = vit.conv_proj, vit.class_token
        self.pos_embedding, self.dropout = vit.encoder.pos_embedding, vit.encoder.dropout
        self.blocks = vit.encoder.layers
        self.maps = nn.ModuleList(TokensToMap() for _ in self.blocks)
        self.grid = int((self.pos_embedding.shape[1] - 1) ** 0.5)  # 14 for 224 px and 16 px patches

    def positions(self, height, width):
        """The position embeddings for a height x width patch grid: (1, 1 + h w, C)."""
        learned = self.pos_embedding[:, 1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(learned, size=(height, width), mode="bicubic", align_corners=False)
        return torch.cat([self.pos_embedding[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

    def forward(self, x):
        height, width = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)                  # (N, h w, C)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = self.dropout(tokens + self.positions(height, width))
        maps = []
        for block, to_map in zip(self.blocks, self.maps):
            tokens = block(tokens)
            maps.append(to_map(tokens, height, width))                          # (N, C, h, w)
        return maps


def _torchvision(name, weights, seed):
    return build_classifier(name, weights, seed)


def _vit(weights, seed):
    return AnySizeViT(build_classifier("vit_b_16", weights, seed))


def _nodes(prefix, indices):
    return dict(zip(POINTS, (f"{prefix}{i}" for i in indices)))


BUILT_IN = {  # name: (build, points, family, layout)
    "convnext_tiny": (functools.partial(_torchvision, "convnext_tiny"), _nodes("features.", (1, 3, 5, 7)),
                      "ConvNeXt", "nchw"),
    "vit_b_16": (_vit, _nodes("maps.", (2, 5, 8, 11)), "ViT", "nchw"),
    "swin_t": (functools.partial(_torchvision, "swin_t"), _nodes("features.", (1, 3, 5, 7)), "Swin", "nhwc"),
    "regnet_y_400mf": (functools.partial(_torchvision, "regnet_y_400mf"),
                       _nodes("trunk_output.block", (1, 2, 3, 4)), "RegNet", "nchw"),
    "mobilenet_v3_large": (functools.partial(_torchvision, "mobilenet_v3_large"), _nodes("features.", (3, 6, 12, 15)),
                           "MobileNet", "nchw"),
}
EXTENDED = tuple(BUILT_IN)

for _name, (_build, _points, _family, _layout) in BUILT_IN.items():
    # the whole network, for its attributes: torchvision's classifier; for ViT the any-size trunk
    # (torchvision's ViT takes 224 px only; the trunk leaves out the classification head)
    whole = _build if _name == "vit_b_16" else functools.partial(_torchvision, _name)
    register_architecture(_name, _build, _points, family=_family, layout=_layout, imagenet=_name, classifier=whole,
                          check=False)  # tests/test_extended.py builds each at every point


# ----- timm ---------------------------------------------------------------------------------

def _timm_model(model_name, weights, seed):
    """A timm model: weights None (random, seeded), "imagenet"/"pretrained" (timm's default
    pretrained tag, from its hub), another of timm's pretrained tags of the model (a
    pretraining axis: e.g. resnet50's "a1_in1k" or "fb_swsl_ig1b_ft_in1k", from
    timm.list_pretrained) or a state-dict path."""
    try:
        import timm
    except ImportError:
        raise Unavailable("timm models need timm: pip install 'dplib[timm]'") from None
    tags = {name.split(".", 1)[1] for name in timm.list_pretrained(f"{model_name.split('.')[0]}.*")}
    tagged = isinstance(weights, str) and weights in tags and not Path(weights).is_file()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pretrained = tagged or (isinstance(weights, str) and weights.lower() in ("imagenet", "pretrained"))
        model = timm.create_model(f"{model_name.split('.')[0]}.{weights}" if tagged else model_name,
                                  pretrained=pretrained)
    if weights is not None and not pretrained:
        load_weights(model, weights, f"timm:{model_name}")
    return model


def timm_architecture(name):
    """The registry entry of "timm:<model>": its four points are the last four of timm's
    feature stages (`model.feature_info`), its nodes the modules timm names for them."""
    model_name = name.split(":", 1)[1]
    model = _timm_model(model_name, None, 0)
    stages = [info["module"] for info in getattr(model, "feature_info", [])]
    if len(stages) < 4:
        raise InputError(f"{name}: timm lists {len(stages)} feature stages; register it with "
                         "dplib.register_architecture and FX node names instead")
    return register_architecture(name, functools.partial(_timm_model, model_name), dict(zip(POINTS, stages[-4:])),
                                 family="timm", replace=True)


register_resolver("timm:", timm_architecture)


# ----- networks of one's own -------------------------------------------------------------------
NETWORKS_VARIABLE = "DPLIB_NETWORKS"  # modules that register networks, comma-separated: imported with the registry


def import_networks():
    """Import the modules named in DPLIB_NETWORKS (each calls dplib.register_architecture), so
    that the grid, its checks and every run's kernel know them: called as the registry loads."""
    import importlib
    import os

    for name in filter(None, (n.strip() for n in os.environ.get(NETWORKS_VARIABLE, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise Unavailable(f"{NETWORKS_VARIABLE} names the module {name!r}, which cannot be imported ({error}); "
                              "put its folder on PYTHONPATH or fix the name") from None


import_networks()  # with the networks above, whenever the registry loads (dplib.lossnets imports this module)
