"""The loop: a :class:`Trainer` that runs steps and emits events; callbacks decide policy.

Every face consumes the same stream (:meth:`Trainer.events`)::

    trainer = Trainer(model_config, train_config, dataset, out="model.safetensors")
    for event in trainer.events():  # StepEvent, PreviewEvent, ValidationEvent, SavedEvent,
        ...                           # SpeedEvent, ThreadsEvent, FinishedEvent (see .events)

The state (:mod:`.state`) is what a checkpoint holds, the step (:mod:`.step`) is one batch,
the callbacks (:mod:`.callbacks`) preview, validate, save, log the speed, re-choose
``threads=auto`` as the load changes and stop at the time limit, :mod:`.failures` handles a
non-finite loss or out of memory, :mod:`.setup` builds a run.
With the same seed on a deterministic CPU, N steps + save + resume + M steps gives the same
weights as N + M steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

from ..config import TrainConfig
from . import callbacks as cbs
from .adapt import AdaptThreads
from . import distributed as dist
from .events import LOSS_NAMES, FinishedEvent, SavedEvent, StepEvent
from .failures import guarded, non_finite, save_last_good
from .saving import data_description, save_finite
from .setup import build, thread_policy


class Trainer:
    """Pix2Pix training on a :class:`~napari_pix2pix.data.PairedDataset`.

    ``out``: the model file written at the end (and on stop, and on a non-finite loss).
    ``resume``: a model file (or Checkpoint) to continue from (weights, optimizers, RNG, step).
    ``init_from``: start from a model's weights only. ``val_dataset``: the held-out split.
    ``gui``: a GUI thread shares this process (the thread policy leaves it a core).
    ``callbacks``: extra :class:`~.callbacks.Callback` objects (their events join the stream).
    """

    def __init__(self, model, config: TrainConfig, dataset, *, val_dataset=None, out=None, resume=None,
                 init_from=None, gui: bool = False, callbacks=()):
        self.config, self.dataset, self.val_dataset = config, dataset, val_dataset
        self.out = Path(out) if out else None
        self.gui, self._stop, self.stop_reason, self.started_at = gui, False, None, None
        build(self, model, resume, init_from)
        self.validation = cbs.Validation(self, fresh_csv=resume is None)
        last = Path(config.checkpoint_dir) / "last.safetensors" if config.checkpoint_dir else None
        self.callbacks = [cbs.Previews(config.preview_every), self.validation,
                          cbs.Checkpoints(config.checkpoint_every, last), *callbacks]
        if getattr(config, "time_limit", 0):
            self.callbacks.append(cbs.TimeLimit(config.time_limit))
        self._losses = dict.fromkeys(LOSS_NAMES, float("nan"))
        self._saved: dict[str, int] = {}  # path -> step this run last wrote there
        self._start_step = self.state.step  # resumed at (nothing newer to save before a good step)
        self.threads = None  # the ThreadChoice of the running stream (CPU)

    # ------------------------------------------------------------------------ state access
    generator = property(lambda self: self.state.generator)
    discriminator = property(lambda self: self.state.discriminator)
    opt_g = property(lambda self: self.state.opt_g)
    opt_d = property(lambda self: self.state.opt_d)
    scaler = property(lambda self: self.state.scaler)
    sampler_rng = property(lambda self: self.state.sampler_rng)
    history = property(lambda self: self.state.history)
    metrics = property(lambda self: self.state.metrics)
    best = property(lambda self: self.validation.best)
    total_steps = property(lambda self: self.config.steps)
    is_main = property(lambda self: self.rank == 0)
    step = property(lambda self: self.state.step, lambda self, value: setattr(self.state, "step", value))

    def stop(self, reason: str = "stopped") -> None:
        """Ask the stream to end after the current step (thread-safe: a flag)."""
        self.stop_reason = self.stop_reason or reason
        self._stop = True

    # ---------------------------------------------------------------------------- one step
    def train_step(self, *, readout: bool = True) -> dict:
        """One iteration; returns the losses as floats (``G_GAN``, ``G_L1``, ``D_real``, ``D_fake``):
        read from the device when ``readout``, else the last values read. A non-finite loss
        changes nothing and raises :class:`TrainingError` (``nan_policy='stop'``) or returns
        ``{'skipped': 1.0}`` (``'skip'``). Under the deferred guard the raise comes at the next readout."""
        self.stepper.before()
        outcome = self.stepper(*self._batch())
        if outcome.bad is not None:
            if self.config.nan_policy == "skip":
                return {"skipped": 1.0}
            raise non_finite(self, outcome)
        if readout:
            self._read()
        return dict(self._losses)

    def _read(self) -> None:
        self._losses = self.stepper.read() or self._losses

    def _readout_at(self, step: int) -> bool:
        cfg = self.config
        return (step == 1 or step >= cfg.steps or step % max(cfg.log_every, 1) == 0
                or any(cb.wants(self, step) for cb in self.callbacks))

    # ------------------------------------------------------------------------- evaluation
    def preview(self):
        return cbs.preview(self)

    def validate(self) -> dict:
        return cbs.validate(self)

    # ---------------------------------------------------------------------------- saving
    def checkpoint(self):
        return self.state.checkpoint(data_description(self.dataset))

    def model_checkpoint(self):
        """The model the user gets: the best validated checkpoint with ``select_best``, else the current."""
        best = self.validation.best_checkpoint(self) if self.config.select_best else None
        return best if best is not None else self.checkpoint()

    def save(self, path, ckpt=None) -> Path:
        """Write the training state atomically; refuses non-finite weights, buffers or moments."""
        ckpt = ckpt if ckpt is not None else self.checkpoint()
        written = save_finite(path, ckpt)
        self._saved[str(Path(path))] = ckpt.step
        return written

    def _save_last_good(self) -> None:
        save_last_good(self)  # see .failures

    def side_path(self, name: str) -> Path | None:
        """``best.safetensors`` / ``metrics.csv`` beside the checkpoints (or beside ``out``)."""
        if self.config.checkpoint_dir:
            return Path(self.config.checkpoint_dir) / name
        return self.out.with_name(f"{self.out.stem}.{name}") if self.out is not None else None

    def _final_paths(self) -> list[Path]:
        paths = [Path(self.config.checkpoint_dir) / "last.safetensors"] if self.config.checkpoint_dir else []
        return paths + ([self.out] if self.out is not None else [])

    # ---------------------------------------------------------------------------- stream
    def events(self) -> Iterator:
        """Train until ``config.steps``, :meth:`stop` or the time limit, yielding events."""
        cfg = self.config
        self.threads, restore = thread_policy(self)
        self.started_at = start = time.perf_counter()
        speed = cbs.Speed(cfg.log_every, self.threads)
        adapt = ()  # an explicit thread count always wins; auto re-reads the load now and then
        if self.threads is not None and getattr(cfg, "threads", "auto") == "auto":
            adapt = (AdaptThreads(self.threads, work=self.work, gui=self.gui),)
        try:
            while self.step < cfg.steps and not self._stop:
                t0 = time.perf_counter()
                losses = self._guarded_step()
                if "skipped" in losses:
                    yield StepEvent(self.step, cfg.steps, losses, self.state.lr, 0.0)
                    continue
                step, lr = self.step, self.config.lr_at(self.step - 1)
                if step % max(cfg.log_every, 1) == 0 or step == cfg.steps:
                    self.history.append({"step": step, **losses, "lr": lr})
                if self.world_size > 1 and any(cb.wants(self, step) for cb in self.callbacks):
                    dist.sync_buffers(self.state.modules(), self.world_size)
                if not self.is_main:
                    continue
                yield StepEvent(step, cfg.steps, losses, lr, time.perf_counter() - t0, fresh=self._fresh)
                for cb in (*adapt, speed, *self.callbacks):
                    yield from cb.on_step(self, step)
            yield from self._finish(start)
        finally:
            restore()

    def _guarded_step(self) -> dict:
        self._fresh = self._readout_at(self.step + 1)
        return self._guarded(lambda: self.train_step(readout=self._fresh))

    def _guarded(self, work):
        return guarded(self, work)  # see .failures

    def _finish(self, start: float) -> Iterator:
        reason = self.stop_reason or "done"
        self._guarded(self._read)  # the deferred guard's flag, before anything is saved
        if self.world_size > 1:
            dist.sync_buffers(self.state.modules(), self.world_size)
        path = None
        if self.is_main:
            for cb in self.callbacks:
                yield from cb.on_end(self, reason)
            for p in self._final_paths():
                ckpt = self.model_checkpoint() if p == self.out else None
                path = str(self.save(p, ckpt))
                yield SavedEvent(self.step, path)
        dist.finish(self._owns_group)
        yield FinishedEvent(self.step, path, self._stop, time.perf_counter() - start, list(self.history), reason)

    def run(self, callback=None):
        """Consume :meth:`events` to the end, calling ``callback(event)`` for each; returns the last."""
        last = None
        for event in self.events():
            if callback is not None:
                callback(event)
            last = event
        return last
