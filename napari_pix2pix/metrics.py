"""Image-quality metrics on model-space tensors ``[B, C, H, W]`` in [-1, 1] (kornia where it has them).

PSNR and SSIM are computed on images mapped to [0, 1]. PSNR of identical images is capped at
``PSNR_CAP`` dB so that it stays a finite number in tables and JSON.
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


def image_metrics(fake: torch.Tensor, target: torch.Tensor, labels: bool = False) -> dict:
    """``{'L1', 'PSNR', 'SSIM'}`` (plus ``Dice`` and ``IoU`` after thresholding at 0 when
    ``labels``) for ``[B, C, H, W]`` tensors in [-1, 1]. L1 is in model units (range 2)."""
    out = {"L1": float(torch.mean(torch.abs(fake.float() - target.float()))),
           "PSNR": psnr(fake, target),
           "SSIM": float(ssim_map(fake, target).mean()) if min(fake.shape[-2:]) >= 11 else float("nan")}
    if labels:
        pred, true = fake > 0, target > 0
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
