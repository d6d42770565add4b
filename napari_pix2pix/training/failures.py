"""When a step fails: a non-finite loss or out of memory.

The last good state is written (to ``checkpoint_dir/last.safetensors`` and ``out``), except
where this run already wrote exactly that step, or no step succeeded since resuming (the files
then stay byte for byte what they were); then a :class:`TrainingError` says what happened and
what to do. The loop calls :func:`guarded` around each step and the final read-out.
"""

from __future__ import annotations

from ..errors import TrainingError
from . import distributed as dist
from .saving import FIX


def non_finite(trainer, outcome) -> TrainingError:
    """The error for a step whose ``outcome`` reports a NaN/inf (nothing was changed)."""
    return TrainingError(f"the {outcome.bad} became {outcome.value} at step {trainer.step + 1}; training "
                         "stopped and the weights, batch-norm statistics and optimizer state of the last "
                         f"good step ({trainer.step}) were kept.", FIX)


def save_last_good(trainer) -> None:
    """Write the (rolled back) state to the final paths, unless nothing new is there to write."""
    if trainer.step == trainer._start_step and trainer._start_step > 0:
        return
    for path in trainer._final_paths():
        if trainer._saved.get(str(path)) != trainer.step:
            trainer.save(path)


def guarded(trainer, work):
    """``work()``; on a non-finite loss or out of memory, save the last good state and raise."""
    try:
        return work()
    except TrainingError:
        if trainer.is_main:
            save_last_good(trainer)
        dist.finish(trainer._owns_group, barrier=False)
        raise
    except (RuntimeError, MemoryError) as exc:
        from ..inference import is_out_of_memory

        if not is_out_of_memory(exc):
            raise
        if trainer.is_main:
            save_last_good(trainer)
        cfg, mc = trainer.config, trainer.model_config
        raise TrainingError(
            f"out of memory at step {trainer.step + 1} (batch {cfg.batch_size}, crop {cfg.crop}, "
            f"{mc.generator} ngf {mc.ngf}, device {trainer.device}).",
            "lower the batch size or crop, use a smaller generator, --precision bf16/fp16, "
            "or another device; the last checkpoint is kept.") from None
