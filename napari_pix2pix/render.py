"""Pictures for people: 8-bit display scaling, a diverging colormap and contact sheets (numpy only).

Layouts: images are ``[H, W]`` or ``[H, W, C]``; results are uint8 ``[H, W, 3]``.
"""

from __future__ import annotations

import numpy as np


def to_uint8(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Scale ``[H, W]`` or ``[H, W, C]`` to uint8 between two percentiles; gray becomes RGB."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    lo, hi = np.percentile(x, [low, high]) if x.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    y = np.clip((x - lo) / (hi - lo), 0, 1)
    y = (y * 255 + 0.5).astype(np.uint8)
    if y.ndim == 2:
        y = np.repeat(y[..., None], 3, -1)
    return y[..., :3]


def diverging(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Blue (negative) - white (0) - red (positive) colours for ``[H, W]`` values; ``limit``
    is the magnitude mapped to full colour (default: the largest magnitude)."""
    v = np.asarray(values, dtype=np.float64)
    limit = float(np.abs(v).max()) if limit is None else float(limit)
    t = np.clip(v / (limit or 1.0), -1, 1)
    pos, neg = np.clip(t, 0, 1), np.clip(-t, 0, 1)
    rgb = np.stack([1 - neg, 1 - pos - neg, 1 - pos], -1)  # red keeps R, blue keeps B
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def contact_sheet(panels: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels (uint8 RGB of equal height) side by side with white gaps: ``[H, sum(W) + gaps, 3]``."""
    h = max(p.shape[0] for p in panels)
    parts = []
    for i, p in enumerate(panels):
        if p.shape[0] != h:
            p = np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
        parts.append(p)
        if i < len(panels) - 1:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(parts, 1)


def nearest_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of ``[h, w, ...]`` to ``[height, width, ...]`` (for coarse maps)."""
    rows = np.minimum((np.arange(height) * image.shape[0]) // height, image.shape[0] - 1)
    cols = np.minimum((np.arange(width) * image.shape[1]) // width, image.shape[1] - 1)
    return image[rows][:, cols]
