"""Pix2Pix objectives: a conditional GAN term (vanilla, lsgan or hinge) plus lambda * L1.

Discriminator outputs are raw logits ``[B, 1, h, w]``; every loss is a mean over cells and batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gan_loss(logits: torch.Tensor, real: bool, mode: str = "vanilla", for_discriminator: bool = True
             ) -> torch.Tensor:
    """GAN loss of ``logits`` against the label ``real``.

    ``vanilla``: binary cross-entropy with logits (the paper's). ``lsgan``: mean squared error to
    1 / 0. ``hinge``: for D, relu(1 - x) on real and relu(1 + x) on fake; for G, -mean(x).
    """
    logits = logits.float()
    if mode == "vanilla":
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))
    if mode == "hinge":
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()
    raise ValueError(f"unknown gan mode {mode!r}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, mode: str = "vanilla"
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss_D, loss_D_real, loss_D_fake)`` with loss_D halved, as in the paper, so that D
    learns more slowly than G."""
    d_real = gan_loss(real_logits, True, mode)
    d_fake = gan_loss(fake_logits, False, mode)
    return 0.5 * (d_real + d_fake), d_real, d_fake


def generator_loss(fake_logits: torch.Tensor, fake: torch.Tensor, target: torch.Tensor,
                   lambda_l1: float = 100.0, mode: str = "vanilla", lambda_gan: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss_G, loss_G_GAN, loss_G_L1)``; loss_G_L1 already includes ``lambda_l1``; the GAN
    term enters loss_G with weight ``lambda_gan`` (reported unweighted).
    ``fake`` and ``target``: ``[B, C, H, W]``."""
    g_gan = gan_loss(fake_logits, True, mode, for_discriminator=False)
    g_l1 = F.l1_loss(fake.float(), target.float()) * lambda_l1
    return lambda_gan * g_gan + g_l1, g_gan, g_l1
