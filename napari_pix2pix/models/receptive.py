"""Receptive-field geometry of a discriminator, computed from its layers (not from a table).

For a chain of convolutions with kernel k_l, stride s_l and padding p_l, cell i of the output
map sees input rows ``i * J + start .. i * J + start + R - 1`` where J = prod(s_l) is the
jump, R = 1 + sum((k_l - 1) * J_{l-1}) the receptive field and start = -sum(p_l * J_{l-1}).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Geometry:
    """Receptive field ``rf`` (pixels), ``jump`` (stride of the map in input pixels), ``start``
    (input coordinate of the first cell's box), and the layer list used for map sizes.
    ``global_pool``: the map is pooled into one value, so every cell sees the whole input."""

    rf: int
    jump: int
    start: int
    convs: tuple[tuple[int, int, int], ...]  # (kernel, stride, padding) per conv
    global_pool: bool = False

    def map_size(self, height: int, width: int | None = None) -> tuple[int, int]:
        """Output map size ``(h, w)`` for an input of ``height x width``."""
        width = height if width is None else width
        h, w = height, width
        for k, s, p in self.convs:
            h = (h + 2 * p - k) // s + 1
            w = (w + 2 * p - k) // s + 1
        if self.global_pool:
            return (1, 1) if h > 0 and w > 0 else (0, 0)
        return max(h, 0), max(w, 0)

    def cell_box(self, i: int, j: int, height: int | None = None, width: int | None = None
                 ) -> tuple[int, int, int, int]:
        """Input box ``(row0, col0, row1, col1)`` (inclusive) seen by map cell ``(i, j)``,
        clipped to the image when its size is given."""
        if self.global_pool:
            if height is None or width is None:
                raise ValueError("an image-level discriminator needs the image size for its box")
            return 0, 0, height - 1, width - 1
        r0, c0 = i * self.jump + self.start, j * self.jump + self.start
        r1, c1 = r0 + self.rf - 1, c0 + self.rf - 1
        if height is not None:
            r0, r1 = max(r0, 0), min(r1, height - 1)
        if width is not None:
            c0, c1 = max(c0, 0), min(c1, width - 1)
        return r0, c0, r1, c1

    def cell_centre(self, i: int, j: int) -> tuple[float, float]:
        """Input coordinate (row, col) of the centre of cell (i, j)'s unclipped box."""
        return (i * self.jump + self.start + (self.rf - 1) / 2,
                j * self.jump + self.start + (self.rf - 1) / 2)


def geometry(module: nn.Module) -> Geometry:
    """Walk ``module``'s convolutions in registration order (all our discriminators are chains)."""
    convs = []
    rf, jump, start = 1, 1, 0
    pool = False
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
            if m.kernel_size[0] != m.kernel_size[1] or m.stride[0] != m.stride[1]:
                raise ValueError("only square kernels and strides are supported")
            rf += (k - 1) * jump
            start -= p * jump
            jump *= s
            convs.append((k, s, p))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            pool = True
    return Geometry(rf=rf, jump=jump, start=start, convs=tuple(convs), global_pool=pool)
