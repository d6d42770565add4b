"""Image-quality metrics on model-space tensors ``[B, C, H, W]`` in [-1, 1] (kornia where it has them).

PSNR and SSIM are computed on images mapped to [0, 1]. PSNR of identical images is capped at
``PSNR_CAP`` dB so that it stays a finite number in tables and JSON. :func:`sharpness` compares
the high-frequency (Laplacian) energy of an output with its target's (1: as sharp, below 1:
blurrier, as L1-only training tends to be); :func:`error_map` is the per-pixel absolute error.
"""

from __future__ import annotations

import torch

PSNR_CAP = 100.0


def psnr(fake: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``[B, C, H, W]`` tensors in [-1, 1] (peak 1 after mapping to [0, 1])."""
    mse = torch.mean(((fake.float() - target.float()) / 2) ** 2).item()
    if mse <= 10 ** (-PSNR_CAP / 10):
        return PSNR_CAP
    import kornia

    return float(kornia.metrics.psnr((fake.float() + 1) / 2, (target.float() + 1) / 2, 1.0))


def ssim_map(fake: torch.Tensor, target: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Per-pixel SSIM ``[B, C, H, W]`` (kornia, Gaussian window 11) of tensors in [-1, 1]."""
    import kornia

    return kornia.metrics.ssim((fake.float() + 1) / 2, (target.float() + 1) / 2, window, max_val=1.0)


def error_map(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel absolute error ``[B, C, H, W]`` in [0, 1] units (|fake - target| / 2 of [-1, 1] tensors)."""
    return torch.abs(fake.float() - target.float()) / 2


def laplacian_energy(x: torch.Tensor) -> float:
    """Mean squared 3x3 Laplacian (kornia, reflect border) of ``[B, C, H, W]`` in [-1, 1], on the [0, 1] scale."""
    import kornia

    lap = kornia.filters.laplacian((x.float() + 1) / 2, 3, border_type="reflect", normalized=True)
    return float(torch.mean(lap**2))


def sharpness(fake: torch.Tensor, target: torch.Tensor) -> float:
    """High-frequency energy of ``fake`` relative to ``target``: Laplacian energy ratio
    output / target. About 1 = as sharp as the target, below 1 = blurrier, above 1 = noisier
    or over-sharpened. NaN when the target is flat (no Laplacian energy)."""
    ref = laplacian_energy(target)
    return laplacian_energy(fake) / ref if ref > 0 else float("nan")


def label_foreground(y: torch.Tensor, encoding: str = "binary", top: float = 1.0) -> torch.Tensor:
    """Boolean foreground of label tensors ``[B, C, H, W]`` in model space: ``binary``:
    every element > 0 (``[B, C, H, W]``); ``onehot``: argmax over channels is not class 0
    (``[B, H, W]``); ``scaled`` (ids mapped linearly from 0..top to -1..1): the id rounds to
    at least 1 (``[B, H, W]``)."""
    y = y.float()
    if encoding == "onehot" and y.shape[1] > 1:
        return torch.argmax(y, dim=1) > 0
    if encoding == "scaled":
        top = max(float(top), 1.0)
        return torch.round((y[:, 0] + 1) / 2 * top) >= 1
    return y > 0


def image_metrics(fake: torch.Tensor, target: torch.Tensor, labels: bool = False,
                  encoding: str = "binary", top: float = 1.0) -> dict:
    """``{'L1', 'PSNR', 'SSIM'}`` (plus ``Dice`` and ``IoU`` of the foreground when ``labels``;
    see :func:`label_foreground` for ``encoding``/``top``, default: threshold at 0) for
    ``[B, C, H, W]`` tensors in [-1, 1]. L1 is in model units (range 2)."""
    out = {"L1": float(torch.mean(torch.abs(fake.float() - target.float()))),
           "PSNR": psnr(fake, target),
           "SSIM": float(ssim_map(fake, target).mean()) if min(fake.shape[-2:]) >= 11 else float("nan")}
    if labels:
        pred, true = label_foreground(fake, encoding, top), label_foreground(target, encoding, top)
        inter = (pred & true).sum().item()
        total = pred.sum().item() + true.sum().item()
        union = (pred | true).sum().item()
        out["Dice"] = 1.0 if total == 0 else 2 * inter / total
        out["IoU"] = 1.0 if union == 0 else inter / union
    return out


class BestTracker:
    """Remembers the best value of one validation metric; :meth:`update` says whether a new
    record was set. ``direction``: +1 when higher is better (PSNR, SSIM, Dice), -1 for L1."""

    def __init__(self, metric: str = "PSNR", best: float | None = None, step: int | None = None):
        from .config import BEST_METRIC_DIRECTIONS

        self.metric = metric
        self.direction = BEST_METRIC_DIRECTIONS[metric]
        self.best = best
        self.step = step

    def update(self, step: int, metrics: dict) -> bool:
        value = metrics.get(self.metric)
        if value is None or value != value:  # missing or NaN
            return False
        if self.best is None or (value - self.best) * self.direction > 0:
            self.best, self.step = float(value), step
            return True
        return False


def append_csv(path, row: dict) -> None:
    """Append ``row`` to a CSV file, writing the header when the file is new."""
    import csv
    from pathlib import Path

    path = Path(path)
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
