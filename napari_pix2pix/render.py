"""Pictures for people: 8-bit display scaling, colormaps and contact sheets.

Layouts: images are ``[H, W]`` or ``[H, W, C]``; results are uint8 ``[H, W, 3]``. Colormaps come
from kornia (``kornia.color.ColorMap`` / ``apply_colormap``, a core dependency); torch is
imported only when a colormap is drawn.
"""

from __future__ import annotations

import numpy as np


def to_uint8(image: np.ndarray, low: float = 0.5, high: float = 99.5, *,
             limits: tuple[float, float] | None = None) -> np.ndarray:
    """Scale ``[H, W]`` or ``[H, W, C]`` to uint8 between two percentiles of its finite values
    (or between ``limits``); NaN shows as the low end; gray becomes RGB."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if limits is None:
        finite = x[np.isfinite(x)]
        limits = tuple(np.percentile(finite, [low, high])) if finite.size else (0.0, 1.0)
    lo, hi = float(limits[0]), float(limits[1])
    if not hi > lo:
        hi = lo + 1.0
    y = np.clip((np.nan_to_num(x, nan=lo) - lo) / (hi - lo), 0, 1)
    y = (y * 255 + 0.5).astype(np.uint8)
    if y.ndim == 2:
        y = np.repeat(y[..., None], 3, -1)
    return y[..., :3]


COLORMAP_STEPS = 255  # an odd count: the middle colour sits exactly at 0.5 (0 of a diverging map)


# The training curves' names and colours, shared by the napari plot and the nodes' loss-curve image:
# engine key -> curve name (losses from training.events.LOSS_NAMES; validation metrics), name -> colour.
LOSS_LABELS = {"G_GAN": "G cGAN", "G_L1": "G L1", "D_real": "D real", "D_fake": "D fake"}
VALIDATION_LABELS = {"PSNR": "val PSNR", "SSIM": "val SSIM"}
CURVE_COLOURS = {"G cGAN": "#4e9bd6", "G L1": "#e8a33d", "D real": "#5cb85c", "D fake": "#d9534f",
                 "val PSNR": "#b07cd8", "val SSIM": "#2a9d8f"}


def colormap(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """``[H, W]`` values in 0..1 (clipped; NaN as 0) -> uint8 RGB ``[H, W, 3]`` through kornia's
    colormap ``name`` (any of ``kornia.color.ColorMapType``: viridis, plasma, seismic, ...)."""
    import torch
    from kornia.color import ColorMap, apply_colormap

    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0), 0.0, 1.0)
    with torch.no_grad():
        rgb = apply_colormap(torch.from_numpy(np.ascontiguousarray(v))[None, None],
                             ColorMap(name, num_colors=COLORMAP_STEPS))[0]
    return (np.moveaxis(rgb.numpy(), 0, -1) * 255 + 0.5).astype(np.uint8)


def diverging(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Blue (negative) - white (0) - red (positive) colours for ``[H, W]`` values (kornia's
    ``seismic``, centred at 0); ``limit`` is the magnitude mapped to the ends (default: the
    largest magnitude)."""
    v = np.asarray(values, dtype=np.float64)
    limit = float(np.abs(v).max()) if limit is None and v.size else float(limit or 0.0)
    t = np.clip(v / (limit or 1.0), -1, 1)
    return colormap((t + 1.0) / 2.0, "seismic")


def grid(rows: list[list[np.ndarray]], gap: int = 4, fill: int = 255) -> np.ndarray:
    """Rows of uint8 RGB panels laid out top to bottom, left to right, ``gap`` pixels apart on a
    ``fill`` background: ``[sum(row heights) + gaps, widest row, 3]``. The one contact-sheet
    layout of the project (demo, evaluate, bioimage.io cover, benchmarks)."""
    if not rows or not all(rows):
        raise ValueError("grid needs at least one panel in every row")
    heights = [max(p.shape[0] for p in row) for row in rows]
    widths = [sum(p.shape[1] for p in row) + gap * (len(row) - 1) for row in rows]
    sheet = np.full((sum(heights) + gap * (len(rows) - 1), max(widths), 3), fill, np.uint8)
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for p in row:
            sheet[y:y + p.shape[0], x:x + p.shape[1]] = p
            x += p.shape[1] + gap
        y += h + gap
    return sheet


def contact_sheet(panels: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels (uint8 RGB) side by side with white gaps: ``[H, sum(W) + gaps, 3]``."""
    return grid([list(panels)], gap=gap, fill=255)


def nearest_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of ``[h, w, ...]`` to ``[height, width, ...]`` (for coarse maps)."""
    rows = np.minimum((np.arange(height) * image.shape[0]) // height, image.shape[0] - 1)
    cols = np.minimum((np.arange(width) * image.shape[1]) // width, image.shape[1] - 1)
    return image[rows][:, cols]
