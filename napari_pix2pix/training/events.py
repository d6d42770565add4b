"""What the training loop emits. Every face consumes the same events (see :mod:`.loop`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")


@dataclass
class StepEvent:
    """One finished iteration. ``losses``: G_GAN, G_L1, D_real, D_fake (floats), read from the
    device at log intervals (``fresh``); between them the last values read (``fresh=False``: a
    plot should skip them). ``{'skipped': 1.0}`` for a batch skipped under ``nan_policy='skip'``.
    ``seconds``: wall time of this step."""

    step: int
    total: int
    losses: dict
    lr: float
    seconds: float
    fresh: bool = True


@dataclass
class PreviewEvent:
    """A fixed patch pushed through G (eval mode), in model space [-1, 1], ``[C, H, W]`` each,
    with the discriminator's logit maps ``[h, w]`` for the real and the fake pair, and the quality
    of the fake against the target: ``ssim`` (SSIM map) and ``error`` (|fake - target| on the
    [0, 1] scale), ``[H, W]`` averaged over channels."""

    step: int
    source: np.ndarray
    fake: np.ndarray
    target: np.ndarray
    d_real: np.ndarray
    d_fake: np.ndarray
    ssim: np.ndarray | None = None
    error: np.ndarray | None = None


@dataclass
class ValidationEvent:
    """Metrics on the held-out split (L1, PSNR, SSIM, PSNR_data, ...)."""

    step: int
    metrics: dict


@dataclass
class SavedEvent:
    step: int
    path: str
    best: bool = False


@dataclass
class SpeedEvent:
    """At log intervals: the thread choice and the measured speed, e.g.
    ``threads 1 (auto: small model, 2 cores, GUI) · 6.8 steps/s``."""

    step: int
    steps_per_s: float
    line: str


@dataclass
class ThreadsEvent:
    """``threads=auto`` changed its intra-op thread count mid-run (the load changed), e.g.
    ``threads 2 -> 1 (auto: model 1.9 GFLOP/step, 2 cores, 1 busy)``."""

    step: int
    before: int
    after: int
    line: str


@dataclass
class FinishedEvent:
    step: int
    path: str | None
    stopped: bool
    seconds: float
    history: list = field(default_factory=list)
    reason: str = "done"  # done | stopped | time_limit
