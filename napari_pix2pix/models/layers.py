"""Small building blocks shared by generators and discriminators."""

from __future__ import annotations

from torch import nn


def make_norm(norm: str, channels: int) -> nn.Module:
    """``batch``: BatchNorm2d with running statistics; ``instance``: InstanceNorm2d without
    affine or running statistics (the paper's choice); ``none``: identity."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}")


def norm_has_bias(norm: str) -> bool:
    """Convolutions before a batch norm need no bias (the norm's shift replaces it)."""
    return norm != "batch"


UPSAMPLE_MODES = ("transposed", "bilinear", "nearest")


def make_upsample(mode: str, c_in: int, c_out: int, bias: bool, *, kernel: int = 4,
                  output_padding: int = 0) -> list[nn.Module]:
    """Layers that double the spatial size ``[B, c_in, H, W]`` -> ``[B, c_out, 2H, 2W]``.

    ``transposed``: the paper's ``ConvTranspose2d`` (``kernel`` 4, padding 1 in the U-Net; 3 with
    ``output_padding`` 1 in the ResNet). Its kernels overlap unevenly at stride 2, which can paint
    a checkerboard / lattice. ``bilinear`` / ``nearest``: resize-convolution (Odena et al. 2016):
    interpolate by 2, then a 3x3 convolution (zero padding 1); every output pixel is made the same
    way, so no lattice is built in.
    """
    if mode == "transposed":
        padding = 1
        return [nn.ConvTranspose2d(c_in, c_out, kernel, 2, padding, output_padding=output_padding, bias=bias)]
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"unknown upsample {mode!r}")
    return [ResizeConv2d(c_in, c_out, mode, bias=bias)]


class ResizeConv2d(nn.Conv2d):
    """Resize-convolution as one module: interpolate by 2 (``bilinear`` or ``nearest``), then a
    3x3 convolution with zero padding 1. Being one module (a ``Conv2d``), it takes the place of
    the transposed convolution without shifting state_dict indices (``up.k.0.weight`` stays the
    decoder conv of level k). ``[B, c_in, H, W]`` -> ``[B, c_out, 2H, 2W]``."""

    def __init__(self, c_in: int, c_out: int, mode: str = "bilinear", bias: bool = True):
        super().__init__(c_in, c_out, 3, 1, 1, bias=bias)
        self.mode = mode

    def forward(self, x):
        from torch.nn import functional as F

        if self.mode == "bilinear":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        else:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{self.mode} x2, " + super().extra_repr()


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """The paper's initialisation: conv weights ~ N(0, gain), biases 0, norm scales ~ N(1, gain)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
