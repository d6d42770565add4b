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
