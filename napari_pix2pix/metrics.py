"""Image-quality metrics on model-space tensors ``[B, C, H, W]`` in [-1, 1] (kornia where it has them).

PSNR and SSIM are computed on images mapped to [0, 1]. PSNR of identical images is capped at
``PSNR_CAP`` dB so that it stays a finite number in tables and JSON. :func:`sharpness` compares
the high-frequency (Laplacian) energy of an output with its target's (1: as sharp, below 1:
blurrier, as L1-only training tends to be); :func:`error_map` is the per-pixel absolute error.

Two checks catch what PSNR and SSIM hide:

* :func:`artefact_score` measures a periodic lattice (checkerboard, diagonal stripes) as the
  strongest off-centre peak of the whitened, windowed power spectrum; :func:`artefact_ratio`
  compares an output's with its target's (about 1: no more periodic structure than the target).
* :func:`std_ratio` / :func:`collapse_warning` / :class:`CollapseGuard` flag a generator that
  collapsed to a (nearly) constant image: output std below 1 % of the target's.
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
    """``{'L1', 'PSNR', 'SSIM', 'Std ratio'}`` (plus ``Dice`` and ``IoU`` of the foreground when
    ``labels``; see :func:`label_foreground` for ``encoding``/``top``, default: threshold at 0) for
    ``[B, C, H, W]`` tensors in [-1, 1]. L1 is in model units (range 2). ``Std ratio`` is
    :func:`std_ratio` (output std / target std; below :data:`COLLAPSE_FRACTION`: collapsed)."""
    out = {"L1": float(torch.mean(torch.abs(fake.float() - target.float()))),
           "PSNR": psnr(fake, target),
           "SSIM": float(ssim_map(fake, target).mean()) if min(fake.shape[-2:]) >= 11 else float("nan"),
           "Std ratio": std_ratio(fake, target)}
    if labels:
        pred, true = label_foreground(fake, encoding, top), label_foreground(target, encoding, top)
        inter = (pred & true).sum().item()
        total = pred.sum().item() + true.sum().item()
        union = (pred | true).sum().item()
        out["Dice"] = 1.0 if total == 0 else 2 * inter / total
        out["IoU"] = 1.0 if union == 0 else inter / union
    return out


# ------------------------------------------------------------------ periodic artefacts
ARTEFACT_MIN_RING = 3  # rings below this (periods longer than a third of the image) are content


def _power_spectrum(x) -> "np.ndarray":
    """Power spectrum ``[H, W]`` (zero frequency at the centre) of a 2-D image, or the mean over
    the leading axes of ``[..., H, W]``: each plane minus its mean, times a 2-D Hann window."""
    import numpy as np

    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    a = np.asarray(a, np.float64)
    if a.ndim < 2:
        raise ValueError("artefact_score needs an image of at least 2 dimensions [..., H, W]")
    planes = a.reshape(-1, *a.shape[-2:])
    h, w = planes.shape[-2:]
    window = np.outer(np.hanning(h), np.hanning(w))
    planes = (planes - planes.mean(axis=(-2, -1), keepdims=True)) * window
    power = np.abs(np.fft.fft2(planes)) ** 2
    return np.fft.fftshift(power.mean(axis=0))


def artefact_score(x, min_ring: int = ARTEFACT_MIN_RING) -> float:
    """Periodic-artefact score of an image ``[H, W]`` or ``[..., H, W]`` (numpy or torch).

    The power spectrum of the mean-free, Hann-windowed image is whitened ring by ring: every
    frequency's power is divided by the median power of its frequency ring (radius
    ``sqrt((ky/H)^2 + (kx/W)^2) * min(H, W)``, in whole bins; this removes the 1/f fall-off of
    natural images). The score is the largest whitened value at ring >= ``min_ring`` (the
    strongest off-centre peak). Noise and smooth content give a few tens at most (the maximum of
    many exponential variates over their median); a lattice of period p puts a peak of hundreds
    or thousands at ring ~ size/p. A flat image scores 0. Compare with the target's score
    (:func:`artefact_ratio`), not with a fixed number.
    """
    import numpy as np

    power = _power_spectrum(x)
    h, w = power.shape
    if min(h, w) < 2 * min_ring + 2:
        return float("nan")
    ky = (np.arange(h) - h // 2)[:, None] / h
    kx = (np.arange(w) - w // 2)[None, :] / w
    ring = np.rint(np.sqrt(ky**2 + kx**2) * min(h, w)).astype(int)
    floor = 1e-9 * float(power.mean())  # rounding noise of a (nearly) flat image is not a lattice
    if not floor > 0:
        return 0.0
    best = 0.0
    for r in range(min_ring, min(h, w) // 2 + 1):
        values = power[ring == r]
        best = max(best, float(values.max()) / max(float(np.median(values)), floor))
    return best


def _rings(shape):
    import numpy as np

    h, w = shape
    ky = (np.arange(h) - h // 2)[:, None] / h
    kx = (np.arange(w) - w // 2)[None, :] / w
    return ky, kx, np.rint(np.sqrt(ky**2 + kx**2) * min(h, w)).astype(int)


def artefact_peak(fake, target, min_ring: int = ARTEFACT_MIN_RING) -> tuple[float, float]:
    """(ratio, period in px) of ``fake``'s strongest off-centre spectral peak, whitened by the
    *larger* of the two images' ring medians, over ``target``'s own :func:`artefact_score`.

    :func:`artefact_ratio` whitens the output by its own ring medians. A smooth output (a
    denoised-looking prediction of a noisy target) has almost no power at high frequencies, so
    there a periodic trace far weaker than the target's own noise (e.g. a Nyquist ripple of
    1e-4 of the output's std) still gives a large whitened peak. Here a peak counts only above
    the floor of whichever image is noisier at that frequency: a lattice that stands out of
    the target's texture still scores high, one buried below it scores about 1 or less.
    ``period``: the peak's period in pixels (2: a pixel-to-pixel ripple; ~31: issue 20's lattice).
    NaN ratio when the target scores 0 (flat)."""
    import numpy as np

    p_f, p_t = _power_spectrum(fake), _power_spectrum(target)
    h, w = p_f.shape
    if p_t.shape != (h, w) or min(h, w) < 2 * min_ring + 2:
        return float("nan"), float("nan")
    ky, kx, ring = _rings((h, w))
    floor = 1e-9 * max(float(p_f.mean()), float(p_t.mean()))
    ref = artefact_score(target, min_ring)
    if not floor > 0 or not ref > 0:
        return (0.0 if ref > 0 else float("nan")), float("nan")
    best, period = 0.0, float("nan")
    for r in range(min_ring, min(h, w) // 2 + 1):
        sel = ring == r
        values = p_f[sel]
        med = max(float(np.median(values)), float(np.median(p_t[sel])), floor)
        i = int(np.argmax(values))
        if values[i] / med > best:
            best = float(values[i]) / med
            f = float(np.hypot(np.broadcast_to(ky, (h, w))[sel][i], np.broadcast_to(kx, (h, w))[sel][i]))
            period = 1.0 / f if f > 0 else float("nan")
    return best / ref, period


def artefact_ratio(fake, target, min_ring: int = ARTEFACT_MIN_RING) -> float:
    """:func:`artefact_score` of ``fake`` over that of ``target`` (1: as periodic as the
    target; the quality benchmark's goal is <= 2-5). NaN when the target scores 0 (flat)."""
    ref = artefact_score(target, min_ring)
    return artefact_score(fake, min_ring) / ref if ref > 0 else float("nan")


def pearson(fake, target) -> float:
    """Pearson correlation of all values of ``fake`` and ``target`` (NaN when either is constant)."""
    import numpy as np

    a = fake.detach().float().cpu().numpy() if isinstance(fake, torch.Tensor) else np.asarray(fake)
    b = target.detach().float().cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


# --------------------------------------------------------------------------- collapse
COLLAPSE_FRACTION = 0.01  # output std below this fraction of the target's: collapsed


def std_ratio(fake: torch.Tensor, target: torch.Tensor) -> float:
    """Standard deviation of ``fake`` over that of ``target`` (all values; 1: as much contrast as
    the target, 0: a constant image). NaN when the target is constant."""
    ref = float(target.float().std()) if target.numel() > 1 else 0.0
    return float(fake.float().std()) / ref if ref > 0 else float("nan")


def collapse_warning(metrics: dict, fraction: float = COLLAPSE_FRACTION) -> str | None:
    """A ``Problem. Fix: ...`` message when validation ``metrics`` (with ``Std ratio``, as from
    :func:`image_metrics`) show a collapsed generator, else None."""
    ratio = metrics.get("Std ratio")
    if ratio is None or ratio != ratio or ratio >= fraction:
        return None
    return (f"The generator's validation output is nearly constant (its std is {ratio:.2%} of the "
            f"target's, below {fraction:.0%}): training collapsed. Fix: use batch_size 2 or more, or "
            "norm 'instance'; with upsample 'bilinear'/'nearest' at batch 1 try upsample 'transposed'; "
            "or lower the learning rate and train again.")


class CollapseGuard:
    """A training-event callback: on each :class:`~napari_pix2pix.training.ValidationEvent` whose
    metrics show a collapse (:func:`collapse_warning`) it logs a warning (logger
    ``napari_pix2pix``) once per run and keeps the message in :attr:`message` / :attr:`step`.
    Pass it (or call it) with every event, e.g. ``trainer.run(CollapseGuard())``; ``notify``
    (optional) is called with the message too (a face's status line)."""

    def __init__(self, fraction: float = COLLAPSE_FRACTION, notify=None):
        self.fraction = fraction
        self.notify = notify
        self.message: str | None = None
        self.step: int | None = None

    def __call__(self, event) -> str | None:
        metrics = getattr(event, "metrics", None)
        if not isinstance(metrics, dict) or not hasattr(event, "step"):
            return None
        message = collapse_warning(metrics, self.fraction)
        if message is None:
            return None
        if self.message is None:
            import logging

            logging.getLogger("napari_pix2pix").warning("step %s: %s", event.step, message)
            if self.notify is not None:
                self.notify(message)
        self.message, self.step = message, event.step
        return message


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
