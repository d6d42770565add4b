"""One training iteration: losses, a finite guard, the optimiser updates.

The paper's order: fake = G(A); D on cat(A, fake.detach()) and cat(A, B) with the D loss
halved; D steps; then G against the updated D plus lambda * L1(fake, B); G steps.

**A bad step changes nothing.** The forward passes move batch-norm statistics and G's loss is
computed through the updated D, so before each step the small part of the state that can move
before G's loss is known (batch-norm buffers of G and D, D's parameters and Adam moments: about
5% of the parameters for the default model) is copied into storage allocated once. A
non-finite loss restores that copy and skips both optimiser updates. Two guards:

* ``host`` (CPU, MPS, ``nan_policy='skip'``): each loss is checked on the host before its
  optimiser steps. On a CPU this reads a value the CPU has just computed; nothing waits.
* ``deferred`` (CUDA with ``nan_policy='stop'``): nothing is read per step. The check stays on
  the device: a non-finite loss turns the gradients into NaN, which makes the grad scaler
  (``torch.amp.GradScaler``, the public route to a device-side skip) skip the optimiser step;
  the copy is put back with ``torch.where``; a sticky flag keeps every later step of the
  interval from updating. The loop reads the flag with the losses at log intervals.

Losses stay on the device as one tensor and are read at log intervals by the loop.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..errors import TrainingError
from ..losses import discriminator_loss, generator_loss
from .events import LOSS_NAMES
from .saving import FIX

BAD_NAMES = {1: "discriminator loss", 2: "generator loss"}


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class Outcome:
    """``losses``: device tensor ``[G_GAN, G_L1, D_real, D_fake]``. ``bad``: the host-checked
    failure (``'discriminator loss'`` / ``'generator loss'``) with its ``value``, else None."""

    losses: torch.Tensor | None
    bad: str | None = None
    value: float = float("nan")


class Rollback:
    """Copies of the state a step can move before G's loss is checked, in storage allocated once:
    one flat buffer per dtype, filled by one ``torch.cat`` each (about 90 tensors for the default
    networks; one kernel instead of one copy per tensor)."""

    def __init__(self, state):
        self.state = state
        self._live: list[torch.Tensor] = []
        self._groups: list[tuple[list[torch.Tensor], torch.Tensor]] = []  # (live tensors, flat copy)
        self._views: list[list[torch.Tensor]] = []
        self._opt_empty = True

    def _tensors(self) -> list[torch.Tensor]:
        s = self.state
        live = [b for net in (s.generator, s.discriminator) for b in net.buffers()]
        live += list(s.discriminator.parameters())
        live += [v for st in s.opt_d.state.values() for v in st.values() if torch.is_tensor(v)]
        return live

    @torch.no_grad()
    def save(self) -> None:
        live = self._tensors()
        if len(live) != len(self._live) or any(x is not y for x, y in zip(live, self._live)):
            self._live = live
            by_kind: dict = {}
            for t in live:
                by_kind.setdefault((t.dtype, t.device), []).append(t)
            self._groups = [(ts, torch.empty(sum(t.numel() for t in ts), dtype=dtype, device=device))
                            for (dtype, device), ts in by_kind.items()]
            # flat views made once (they follow the tensors' values); other layouts are read each time
            self._views = [[t.detach().view(-1) if t.is_contiguous() else t for t in ts] for ts, _ in self._groups]
        for views, (_, flat) in zip(self._views, self._groups):
            torch.cat([v if v.dim() == 1 else v.detach().reshape(-1) for v in views], out=flat)
        self._opt_empty = not self.state.opt_d.state

    @torch.no_grad()
    def restore(self, where: torch.Tensor | None = None) -> None:
        """Put the copy back; with a device flag ``where``, only where it is true (no host sync)."""
        for ts, flat in self._groups:
            for t, copy in zip(ts, flat.split([t.numel() for t in ts])):
                copy = copy.view(t.shape)
                t.copy_(copy if where is None else torch.where(where, copy, t))
        if where is None and self._opt_empty:
            self.state.opt_d.state.clear()


class Step:
    """The step of one run (``g_train``/``d_train``: the networks as trained, maybe DDP-wrapped)."""

    def __init__(self, state, g_train, d_train, *, deferred: bool, all_ok=bool, agree=lambda flags: flags):
        self.state, self.g_train, self.d_train = state, g_train, d_train
        self.deferred, self.all_ok, self.agree = deferred, all_ok, agree
        self.rollback = Rollback(state)
        # deferred guard: [halted, first bad step, which loss (1: D, 2: G)] on the device, and the
        # random state before each step since the last readout (host copies, to rewind to)
        self.flags = torch.zeros(3, device=state.device)
        self._rng_log: list = []
        self._last: torch.Tensor | None = None

    def before(self) -> None:
        """Call before drawing the batch: under the deferred guard, remember the random state."""
        if self.deferred:
            self._rng_log.append(self.state.rng_state())

    def _finite(self, loss: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(loss.detach())

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> Outcome:
        s, cfg = self.state, self.state.config
        G, D = s.generator, s.discriminator
        self.rollback.save()
        G.train()
        D.train()
        with autocast(s.device, cfg.precision):
            fake = self.g_train(a)
            fake_logits = self.d_train(torch.cat([a, fake.detach()], 1))
            real_logits = self.d_train(torch.cat([a, b], 1))
        loss_d, d_real, d_fake = discriminator_loss(real_logits, fake_logits, cfg.gan_mode)
        ok_d = self._finite(loss_d)
        if not self.deferred and not self.all_ok(ok_d):
            self.rollback.restore()
            return Outcome(None, "discriminator loss", float(loss_d.detach()))
        halted = self.flags[0] > 0
        bad_d = (~ok_d) | halted if self.deferred else None
        s.opt_d.zero_grad(set_to_none=True)
        s.scaler.scale(self._poison(loss_d, bad_d)).backward()
        s.scaler.step(s.opt_d)

        D.requires_grad_(False)
        try:
            with autocast(s.device, cfg.precision):
                fake_logits = D(torch.cat([a, fake], 1))
            loss_g, g_gan, g_l1 = generator_loss(fake_logits, fake, b, cfg.lambda_l1, cfg.gan_mode, cfg.lambda_gan)
            ok_g = self._finite(loss_g)
            if not self.deferred and not self.all_ok(ok_g):
                self.rollback.restore()
                return Outcome(None, "generator loss", float(loss_g.detach()))
            bad = bad_d | ~ok_g if self.deferred else None
            s.opt_g.zero_grad(set_to_none=True)
            s.scaler.scale(self._poison(loss_g, bad)).backward()
            s.scaler.step(s.opt_g)
            s.scaler.update()
        finally:
            D.requires_grad_(True)
        if self.deferred:
            self._mark(bad, ok_d, s.step + 1)
        s.sched_g.step()
        s.sched_d.step()
        if s.ema is not None:
            s.ema.update_parameters(G)
        s.step += 1
        self._last = torch.stack([g_gan.detach(), g_l1.detach(), d_real.detach(), d_fake.detach()]).float()
        return Outcome(self._last)

    @staticmethod
    def _poison(loss: torch.Tensor, bad: torch.Tensor | None) -> torch.Tensor:
        """``loss``, or NaN gradients where the device flag ``bad`` is set (the scaler then skips)."""
        if bad is None:
            return loss
        return loss * torch.where(bad, float("nan"), 1.0)

    @torch.no_grad()
    def _mark(self, bad: torch.Tensor, ok_d: torch.Tensor, step: int) -> None:
        self.rollback.restore(where=bad)
        new = bad & (self.flags[0] == 0)
        which = torch.where(ok_d, 2.0, 1.0)
        self.flags.copy_(torch.where(new, torch.stack([torch.ones_like(which), torch.full_like(which, step),
                                                       which]), self.flags))

    def read(self) -> dict | None:
        """The last losses as floats (None before the first step). Under the deferred guard, first
        the flag: after a non-finite loss, rewind the counters and random state to the last good
        step (the weights never changed) and raise :class:`TrainingError` naming step and loss."""
        if self.deferred:
            halted, first, which = self.agree(self.flags).tolist()
            log, self._rng_log = self._rng_log, []
            if halted:
                self.flags.zero_()
                good = int(first) - 1
                self.state.rewind(good, log[good - (self.state.step - len(log))])
                raise TrainingError(f"the {BAD_NAMES.get(int(which), 'loss')} became NaN or infinite at step "
                                    f"{int(first)}; training stopped and the state of the last good step ({good}) "
                                    "was kept.", FIX)
        return dict(zip(LOSS_NAMES, self._last.tolist())) if self._last is not None else None
