"""Training in parts: :mod:`.state` (what a checkpoint holds), :mod:`.step` (one batch),
:mod:`.loop` (the :class:`Trainer` that runs steps and emits :mod:`.events`) and
:mod:`.callbacks` (previews, validation + best/EMA, checkpoints, speed, adaptive threads, time limit)."""

from .events import (FinishedEvent, PreviewEvent, SavedEvent, SpeedEvent, StepEvent,  # noqa: F401
                     ThreadsEvent, ValidationEvent)
from .loop import Trainer  # noqa: F401
from .state import TrainState  # noqa: F401
from .step import Step, autocast  # noqa: F401

__all__ = ["Trainer", "TrainState", "Step", "StepEvent", "PreviewEvent", "ValidationEvent", "SavedEvent",
           "SpeedEvent", "ThreadsEvent", "FinishedEvent", "autocast"]
