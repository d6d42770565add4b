"""Policies that subscribe to the loop: previews, validation (+ best checkpoint, EMA),
checkpoints, the speed line, adaptive threads (``threads=auto``) and the time limit. Cancellation is :meth:`Trainer.stop`.

Each callback may ask for a checked state at a step (:meth:`Callback.wants`: the loop then reads
the losses and the finite flag first) and returns the events it produced.
"""

from __future__ import annotations

import time
from pathlib import Path

from .evaluation import preview, validate  # noqa: F401 - re-exported for the loop
from .events import SavedEvent, SpeedEvent, ValidationEvent


class Callback:
    def wants(self, trainer, step: int) -> bool:
        return False

    def on_step(self, trainer, step: int) -> list:
        return []

    def on_end(self, trainer, reason: str) -> list:
        return []


def _every(n: int, step: int) -> bool:
    return bool(n) and step % n == 0


# ------------------------------------------------------------------------------- previews
class Previews(Callback):
    def __init__(self, every: int):
        self.every = every

    def wants(self, trainer, step):
        return _every(self.every, step)

    def on_step(self, trainer, step):
        return [preview(trainer)] if _every(self.every, step) else []


# ----------------------------------------------------------------------------- validation
# metrics.csv: L1, PSNR and SSIM keep their names (on the normalised [-1, 1] -> [0, 1] scale);
# the data-unit PSNR is labelled as such
CSV_LABELS = {"PSNR_data": "PSNR_data_units_dB"}


class Validation(Callback):
    """Every ``validate_every`` steps and at the end: metrics, metrics.csv (labelled units), the
    best checkpoint (``best.safetensors``), and with ``select_best`` the best model as ``out``."""

    def __init__(self, trainer, fresh_csv: bool):
        from ..metrics import BestTracker

        self.every = trainer.config.validate_every
        self.best = BestTracker(trainer.config.best_metric)
        best = trainer.state.metrics.get("best") or {}
        if best.get("metric") == self.best.metric:
            self.best.best, self.best.step = best.get("value"), best.get("step")
        self.fresh_csv, self.last = fresh_csv, None
        self.best_ckpt = None  # in memory when there is no file to keep it in

    def _due(self, trainer, step):
        return bool(self.every and trainer.val_a is not None
                    and (step % self.every == 0 or step == trainer.config.steps))

    def wants(self, trainer, step):
        return self._due(trainer, step)

    def on_step(self, trainer, step):
        return self._run(trainer) if self._due(trainer, step) else []

    def on_end(self, trainer, reason):
        events = []
        if reason == "time_limit" and self.every and trainer.val_a is not None and self.last != trainer.step:
            events += self._run(trainer)
        return events

    def _run(self, trainer) -> list:
        from ..metrics import append_csv

        metrics = trainer.validate()  # (a method, so a face or a test can replace it)
        self.last = trainer.step
        improved = self.best.update(trainer.step, metrics)
        state = trainer.state
        state.metrics = {"step": trainer.step, **metrics,
                         "best": {"metric": self.best.metric, "value": self.best.best, "step": self.best.step}}
        state.history.append({"step": trainer.step, **{f"val_{k}": v for k, v in metrics.items()}})
        events = [ValidationEvent(trainer.step, metrics)]
        csv_path = trainer.side_path("metrics.csv")
        if csv_path is not None:
            if self.fresh_csv:
                csv_path.unlink(missing_ok=True)  # a new run starts its own table; a resumed one appends
                self.fresh_csv = False
            append_csv(csv_path, {"step": trainer.step, **{CSV_LABELS.get(k, k): v for k, v in metrics.items()}})
        if improved:
            best_path = trainer.side_path("best.safetensors")
            if best_path is not None:
                events.append(SavedEvent(trainer.step, str(trainer.save(best_path)), best=True))
            elif trainer.config.select_best:
                self.best_ckpt = trainer.checkpoint()
        return events

    def best_checkpoint(self, trainer):
        """The best checkpoint (file or memory), or None when the current state is the best."""
        if self.best.step is None or self.best.step == trainer.step:
            return None
        if self.best_ckpt is not None:
            return self.best_ckpt
        path = trainer.side_path("best.safetensors")
        if path is not None and path.is_file():
            from ..checkpoint import load_checkpoint

            return load_checkpoint(path)
        return None


# ---------------------------------------------------------------------------- checkpoints
class Checkpoints(Callback):
    """Every ``checkpoint_every`` steps: ``checkpoint_dir/last.safetensors`` (or ``out``)."""

    def __init__(self, every: int, path: Path | None):
        self.every, self.path = every, path

    def wants(self, trainer, step):
        return self.path is not None and _every(self.every, step)

    def on_step(self, trainer, step):
        if self.path is None or not _every(self.every, step):
            return []
        return [SavedEvent(step, str(trainer.save(self.path)))]


# ----------------------------------------------------------------------------- speed, time
class Speed(Callback):
    """At log intervals: ``threads 1 (auto: small model, 2 cores, GUI) · 6.8 steps/s``. The thread
    choice is the trainer's current one (:class:`AdaptThreads` may change it); the speed is measured
    from the last change of the thread count."""

    def __init__(self, every: int, threads):
        self.every, self.threads = max(every, 1), threads
        self.t0, self.s0, self.line, self.intra = time.perf_counter(), None, "", None

    def on_step(self, trainer, step):
        threads = getattr(trainer, "threads", None) or self.threads
        intra = threads.intra if threads is not None else None
        if self.s0 is None or intra != self.intra:  # warm-up, or a new thread count: measure from here
            self.t0, self.s0, self.intra = time.perf_counter(), step, intra
            return []
        if step % self.every:
            return []
        rate = (step - self.s0) / max(time.perf_counter() - self.t0, 1e-9)
        self.line = threads.line(rate) if threads is not None else f"{rate:.1f} steps/s"
        return [SpeedEvent(step, rate, self.line)]


class TimeLimit(Callback):
    """Stop after ``seconds`` of wall time (measured from the first step); the loop then
    validates and saves."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, None

    def on_step(self, trainer, step):
        now = time.perf_counter()
        if self.start is None:
            self.start = trainer.started_at or now
        if self.seconds and now - self.start >= self.seconds:
            trainer.stop(reason="time_limit")
        return []
