"""Networks and their construction from a :class:`~napari_pix2pix.config.ModelConfig`."""

from __future__ import annotations

from ..config import ModelConfig, unet_depth
from .discriminators import ImageDiscriminator, PatchDiscriminator, PixelDiscriminator
from .generators import ResNetGenerator, UNetGenerator
from .layers import init_weights
from .receptive import Geometry, geometry

__all__ = ["build_generator", "build_discriminator", "count_parameters", "geometry", "Geometry",
           "UNetGenerator", "ResNetGenerator", "PatchDiscriminator", "PixelDiscriminator",
           "ImageDiscriminator", "init_weights"]


def build_generator(config: ModelConfig, init: bool = True):
    """The generator described by ``config``, initialised N(0, 0.02) unless ``init`` is False."""
    depth = unet_depth(config.generator)
    if depth is not None:
        net = UNetGenerator(config.in_channels, config.out_channels, depth, config.ngf, config.norm,
                            config.dropout, config.unet_skips, config.upsample)
    else:
        blocks = {"resnet_9blocks": 9, "resnet_6blocks": 6}[config.generator]
        net = ResNetGenerator(config.in_channels, config.out_channels, blocks, config.ngf, config.norm,
                              config.dropout)
    if init:
        init_weights(net)
    return net


def build_discriminator(config: ModelConfig, init: bool = True):
    """The conditional discriminator: its input is source and target concatenated on channels."""
    channels = config.in_channels + config.out_channels
    if config.discriminator == "patch":
        net = PatchDiscriminator(channels, config.ndf, config.discriminator_layers, config.norm)
    elif config.discriminator == "pixel":
        net = PixelDiscriminator(channels, config.ndf, config.norm)
    else:
        net = ImageDiscriminator(channels, config.ndf, config.norm)
    if init:
        init_weights(net)
    return net


def count_parameters(module) -> int:
    """Number of trainable parameters (buffers such as running statistics are not counted)."""
    return sum(p.numel() for p in module.parameters())
