"""Re-reading the thread policy during training (``threads=auto``): another process may start or
end after the run began, and torch's spinning intra-op threads make a step with more threads than
free cores many times slower."""

from __future__ import annotations

import logging
import time

from .callbacks import Callback
from .events import ThreadsEvent

# seconds of training between two re-reads of the load by AdaptThreads (a read costs about 40 ms)
RECHECK_SECONDS = 10.0


class AdaptThreads(Callback):
    """``threads=auto`` only: every ``every`` seconds (checked at step boundaries) ask the thread
    policy (:func:`napari_pix2pix.threads.choose_threads`) again, since another process may have
    started or ended since the run began; torch's intra-op threads spin, and a step with more threads
    than free cores runs many times slower. A new count is applied (``torch.set_num_threads``) only
    when two checks in a row agree on it, so a one-check blip changes nothing. Each change sets
    ``trainer.threads``, is logged (``napari_pix2pix`` logger, INFO) and emitted as a
    :class:`~.events.ThreadsEvent`. ``clock``, ``read_busy``, ``read_cores`` and ``set_threads``
    are for tests (None: the policy's own readers and torch)."""

    def __init__(self, current, *, work=None, gui=False, every=None, clock=time.monotonic,
                 read_busy=None, read_cores=None, set_threads=None):
        self.current, self.work, self.gui = current, work, gui
        self.every = RECHECK_SECONDS if every is None else every
        self.clock, self.read_busy, self.read_cores = clock, read_busy, read_cores
        self.set_threads = set_threads
        self.due, self.pending = None, None  # next check (clock time); the count the last check proposed

    def choose(self):
        from ..threads import choose_threads

        return choose_threads("auto", work=self.work, gui=self.gui,
                              cores=self.read_cores() if self.read_cores else None,
                              busy=self.read_busy() if self.read_busy else None)

    def on_step(self, trainer, step):
        now = self.clock()
        if self.due is None:
            self.due = now + self.every
            return []
        if now < self.due:
            return []
        self.due = now + self.every
        choice = self.choose()
        if choice.intra == self.current.intra:
            self.pending = None
            self.current = trainer.threads = choice  # same count; the reason states today's load
            return []
        if self.pending != choice.intra:  # first sight of a new count: wait for the next check
            self.pending = choice.intra
            return []
        before, self.pending = self.current.intra, None
        if self.set_threads is not None:
            self.set_threads(choice.intra)
        else:
            import torch

            torch.set_num_threads(choice.intra)
        self.current = trainer.threads = choice
        line = f"threads {before} -> {choice.intra} ({choice.reason})"
        logging.getLogger("napari_pix2pix").info("step %s: %s", step, line)
        return [ThreadsEvent(step, before, choice.intra, line)]
