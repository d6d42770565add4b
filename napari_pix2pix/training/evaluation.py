"""What G does on held-out data: the preview patch (with D maps) and the validation metrics."""

from __future__ import annotations

import numpy as np
import torch

from .events import PreviewEvent


@torch.no_grad()
def preview(trainer) -> PreviewEvent:
    """G (eval mode) and D maps on the fixed preview patch; consumes no random numbers."""
    from ..metrics import error_map, ssim_map

    G, D = trainer.generator, trainer.discriminator
    a, b = trainer.preview_a.to(trainer.device), trainer.preview_b.to(trainer.device)
    was_g, was_d = G.training, D.training
    G.eval()
    D.eval()
    try:
        fake = G(a)
        d_real, d_fake = D(torch.cat([a, b], 1)), D(torch.cat([a, fake], 1))
    finally:
        G.train(was_g)
        D.train(was_d)
    fake0, b0 = fake[:1].float().cpu(), b[:1].float().cpu()
    return PreviewEvent(trainer.step, a[0].float().cpu().numpy(), fake0[0].numpy(), b0[0].numpy(),
                        d_real[0, 0].float().cpu().numpy(), d_fake[0, 0].float().cpu().numpy(),
                        ssim=ssim_map(fake0, b0)[0].mean(0).numpy(), error=error_map(fake0, b0)[0].mean(0).numpy())


def psnr_data(fake: torch.Tensor, target: torch.Tensor, norm) -> float:
    """PSNR in dB in the target's data units: both sides mapped back through the dataset's
    normalisation, peak = the held-out target's value range (not the [-1, 1] model scale)."""
    f = norm.inverse(fake.numpy(), dtype=np.float64)
    t = norm.inverse(target.numpy(), dtype=np.float64)
    mse = float(np.mean((f - t) ** 2))
    peak = float(t.max() - t.min())
    if peak <= 0:
        return float("nan")
    from ..metrics import PSNR_CAP

    return PSNR_CAP if mse <= peak**2 * 10 ** (-PSNR_CAP / 10) else 10 * np.log10(peak**2 / mse)


@torch.no_grad()
def validate(trainer) -> dict:
    """Metrics of G (or its EMA; eval mode) on the held-out patches; empty without a validation split.
    ``PSNR`` is on the model's normalised scale, ``PSNR_data`` in data units."""
    if trainer.val_a is None:
        return {}
    from ..metrics import image_metrics

    G = trainer.state.ema.module if trainer.state.ema is not None else trainer.generator
    was = G.training
    G.eval()
    try:
        fake = torch.cat([G(trainer.val_a[i:i + 4].to(trainer.device)) for i in range(0, len(trainer.val_a), 4)])
    finally:
        G.train(was)
    labels = bool(getattr(trainer.dataset, "b_is_labels", False))
    norm_b = getattr(trainer.dataset, "norm_b", None)
    extra = {"encoding": norm_b.label_encoding, "top": norm_b.high} if labels and norm_b is not None else {}
    fake, target = fake.float().cpu(), trainer.val_b.float()
    metrics = image_metrics(fake, target, labels=labels, **extra)
    if norm_b is not None and not labels:
        metrics["PSNR_data"] = psnr_data(fake, target, norm_b)
    return metrics
