"""Conditional discriminators: PatchGAN (n_layers 1..5), PixelGAN (1x1) and ImageGAN.

Each takes the source and a (real or generated) target concatenated on channels,
``[B, C_in + C_out, H, W]``, and returns raw logits ``[B, 1, h, w]``: one realness score per
cell of the map. :mod:`napari_pix2pix.models.receptive` derives each cell's input box from
the layers themselves.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import make_norm, norm_has_bias


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs, then two stride-1 4x4 convs.

    Receptive fields for n_layers 1..5: 16, 34, 70, 142, 286 pixels; with n_layers=3 a
    256x256 input gives a 30x30 map. ``[B, C, H, W]`` -> ``[B, 1, h, w]`` logits.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        bias = norm_has_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                       make_norm(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PixelDiscriminator(nn.Module):
    """PixelGAN: 1x1 convs only, so each output cell sees one pixel. ``[B, C, H, W]`` -> ``[B, 1, H, W]``."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        bias = norm_has_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make_norm(norm, ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImageDiscriminator(nn.Module):
    """ImageGAN: a 5-layer PatchGAN whose map is averaged into one score per image, so the
    decision depends on the whole input. ``[B, C, H, W]`` -> ``[B, 1, 1, 1]``."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        self.patch = PatchDiscriminator(in_channels, ndf, 5, norm)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.patch(x))
