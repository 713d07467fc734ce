"""The models the benchmarks train: the super-resolution transformation network (B2), the
iterative U-Net (B3), convolutional autoencoders and MLP heads (B4)."""

from .transformer_net import TransformerNet
from .unet import IterativeUNet, UNet

__all__ = ["TransformerNet", "UNet", "IterativeUNet"]
