"""Generators: the paper's U-Net (with or without skips) and the ResNet generator.

All generators map ``[B, C_in, H, W]`` in [-1, 1] to ``[B, C_out, H, W]`` in [-1, 1] (tanh).
H and W must be multiples of :attr:`size_multiple` (``2**depth`` for a U-Net, 4 for ResNet);
:mod:`napari_pix2pix.inference` pads arbitrary images to that.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import make_norm, make_upsample, norm_has_bias


class UNetGenerator(nn.Module):
    """U-Net of ``depth`` down levels (unet_256: 8, unet_128: 7), skip connections at each level.

    Level k (0 = outermost) downsamples with a 4x4 stride-2 conv to ``ngf * min(2**k, 8)``
    channels. No norm on the outermost and innermost down convs. Levels 4 .. depth-2 (the three
    innermost decoder blocks of unet_256) end their up path with dropout 0.5.

    As in the reference network, the features carried by a skip at levels k >= 1 are the
    LeakyReLU-activated ones (the reference applies its LeakyReLU in place before copying).

    ``upsample``: ``transposed`` (the paper's 4x4 stride-2 transposed convs; the layout of the
    reference's checkpoints) or ``bilinear`` / ``nearest`` (resize by 2, then a 3x3 conv; see
    :func:`~napari_pix2pix.models.layers.make_upsample`). With resize-convolution the innermost
    up block has no norm (a conv with bias instead): its input is the 1x1 bottleneck, whose
    resized copy is nearly constant, and normalising it over a batch of one leaves no signal.

    Input ``[B, in_channels, H, W]``, H and W multiples of ``2**depth``; output
    ``[B, out_channels, H, W]`` in [-1, 1].
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: bool = True, skips: bool = True,
                 upsample: str = "transposed"):
        super().__init__()
        if depth < 2:
            raise ValueError("a U-Net needs at least 2 levels")
        self.depth = depth
        self.skips = skips
        self.upsample = upsample
        self.size_multiple = 2**depth
        bias = norm_has_bias(norm)
        width = [ngf * min(2**k, 8) for k in range(depth)]  # down output channels of level k
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for k in range(depth):
            c_in = in_channels if k == 0 else width[k - 1]
            layers: list[nn.Module] = [nn.Conv2d(c_in, width[k], 4, 2, 1, bias=bias)]
            if 0 < k < depth - 1:
                layers.append(make_norm(norm, width[k]))
            self.down.append(nn.Sequential(*layers))
        for k in range(depth):
            c_out = out_channels if k == 0 else width[k - 1]
            innermost = k == depth - 1
            c_in = width[k] if (innermost or not skips) else 2 * width[k]
            plain = k == 0 or (innermost and upsample != "transposed")  # no norm after this conv
            layers = make_upsample(upsample, c_in, c_out, bias=bias or plain)
            if k == 0:
                layers.append(nn.Tanh())
            else:
                if not plain:
                    layers.append(make_norm(norm, c_out))
                if dropout and 4 <= k <= depth - 2:
                    layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H, W]``."""
        feats = []  # activated input of levels 1..depth-1 (what the skips carry)
        h = self.down[0](x)
        for k in range(1, self.depth):
            h = nn.functional.leaky_relu(h, 0.2)
            feats.append(h)
            h = self.down[k](h)
        for k in range(self.depth - 1, -1, -1):
            h = self.up[k](nn.functional.relu(h))
            if k > 0 and self.skips:
                h = torch.cat([feats[k - 1], h], 1)
        return h


class ResidualBlock(nn.Module):
    """Two reflect-padded 3x3 convs with norm, added to the input. ``[B, C, H, W]`` -> same."""

    def __init__(self, channels: int, norm: str, dropout: bool):
        super().__init__()
        bias = norm_has_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   make_norm(norm, channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, ``blocks`` residual blocks, two upsamplings, 7x7 head.

    ``upsample``: ``transposed`` (3x3 stride-2 transposed convs, the reference's layout) or a
    resize-convolution (``bilinear`` / ``nearest`` then 3x3 conv, one
    :class:`~napari_pix2pix.models.layers.ResizeConv2d` module in the same place).

    Input ``[B, in_channels, H, W]`` with H, W multiples of 4; output ``[B, out_channels, H, W]``.
    """

    size_multiple = 4

    def __init__(self, in_channels: int, out_channels: int, blocks: int = 9, ngf: int = 64,
                 norm: str = "batch", dropout: bool = False, upsample: str = "transposed"):
        super().__init__()
        bias = norm_has_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   make_norm(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), make_norm(norm, 2 * c), nn.ReLU(True)]
        layers += [ResidualBlock(ngf * 4, norm, dropout) for _ in range(blocks)]
        for i in range(2):
            c = ngf * 4 // 2**i
            layers += make_upsample(upsample, c, c // 2, bias, kernel=3, output_padding=1)
            layers += [make_norm(norm, c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H, W]``."""
        return self.net(x)
