"""Background work for the widgets: napari ``thread_worker`` s around the engine.

The workers never touch layers: they only yield engine events (or return arrays) to the GUI
thread, where the widgets update layers. Expected problems (:class:`Pix2PixError`) come back
as a :class:`Failed` value rather than an exception, so the widget shows the message once and
napari does not pop up a traceback; anything else is a bug and is raised as usual.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from napari.qt.threading import GeneratorWorker, thread_worker

from ..errors import Pix2PixError


_IMPORT_LOCK = threading.Lock()


def _preload_torch_libraries() -> None:
    """Load torch's shared libraries with the GIL released (Linux).

    ``import torch`` loads libtorch through Python's extension loader, which holds the GIL
    through the whole ``dlopen`` (seconds of relocations and static initialisers): the napari
    GUI thread froze for 2.5 s in a worker's import. ``dlopen`` called through ctypes releases
    the GIL; the import then finds the libraries already loaded. Best effort: any problem
    leaves the plain import to do the work.
    """
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import glob
        import importlib.util
        import os

        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.submodule_search_locations:
            return
        root = spec.submodule_search_locations[0]
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
        mode = os.RTLD_NOW | os.RTLD_GLOBAL
        names = ["libtorch_global_deps.so", "libc10.so", "libtorch_cpu.so", "libtorch.so", "libtorch_python.so"]
        paths = [os.path.join(root, "lib", n) for n in names] + glob.glob(os.path.join(root, "_C.*.so"))
        for path in paths:
            if os.path.exists(path):
                dlopen(path.encode(), mode)
    except Exception:  # noqa: BLE001 - an optimisation only
        pass


def import_torch() -> None:
    """Import torch once, in a worker thread (two threads importing it at once break its
    operator registry); a no-op after the first call. Its libraries are loaded first with the
    GIL released, so the GUI thread keeps running meanwhile."""
    import sys

    with _IMPORT_LOCK:
        if "torch" not in sys.modules:
            _preload_torch_libraries()
        import torch  # noqa: F401


@dataclass
class Failed:
    """An expected error (bad input, bad file, non-finite loss...) raised in the worker."""

    error: Pix2PixError


@dataclass
class Started:
    """The trainer exists: its discriminator geometry, total and starting step, and the history
    it carries (a resumed checkpoint's losses and validation metrics)."""

    geometry: Any
    total: int
    step: int
    history: list = field(default_factory=list)


@dataclass
class ModelReady:
    """Training ended: the trained model (in memory) and the file it was saved to, if any."""

    model: Any
    path: str | None


@dataclass
class ModelSnapshot:
    """The model being trained, copied between two steps (on request, for the Discriminator)."""

    model: Any
    step: int


class TrainingControl:
    """Thread-safe handle on a running training: :meth:`stop` asks the engine to end after the
    current step (and save); :meth:`request_snapshot` asks for a :class:`ModelSnapshot` after the
    current step; :attr:`ready` is set by the GUI once the preview layers exist (training waits
    for it after :class:`Started`); :attr:`done` is set once the worker's generator has returned."""

    def __init__(self) -> None:
        self.trainer = None
        self.stop_requested = False
        self.snapshot_requested = False
        self.ready = threading.Event()
        self.done = threading.Event()

    def request_snapshot(self) -> None:
        self.snapshot_requested = True

    def stop(self) -> None:
        self.stop_requested = True
        self.ready.set()
        trainer = self.trainer
        if trainer is not None:
            trainer.stop()

    def wait_ready(self) -> None:
        while not self.ready.wait(0.05):
            pass

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


class TrainingWorker(GeneratorWorker):
    """The training worker: :meth:`quit` (napari's activity panel, closing the window) asks the
    training to stop after the current step and save, rather than dropping the generator."""

    control: TrainingControl | None = None

    def quit(self) -> None:
        if self.control is not None:
            self.control.stop()
        else:
            super().quit()


@thread_worker(worker_class=TrainingWorker)
def train_events(make_trainer: Callable[[], Any], control: TrainingControl):
    """Build the trainer (``make_trainer()``: torch is imported here, off the GUI thread), yield
    :class:`Started`, wait until the GUI has its preview layers (``control.ready``), then yield
    every engine event of ``trainer.events()`` and finally :class:`ModelReady` (or
    :class:`Failed`)."""
    try:
        import_torch()
        try:
            trainer = make_trainer()
        except Pix2PixError as exc:
            yield Failed(exc)
            return
        trainer.gui = True  # the engine's thread policy leaves the Qt event loop a core
        control.trainer = trainer
        if control.stop_requested:
            trainer.stop()
        yield Started(trainer.geometry, trainer.total_steps, trainer.step, list(getattr(trainer, "history", [])))
        control.wait_ready()
        path = None
        try:
            for event in trainer.events():
                path = getattr(event, "path", path)
                yield event
                if control.snapshot_requested:  # between two steps: no race with training
                    control.snapshot_requested = False
                    yield ModelSnapshot(_model_of(trainer), trainer.step)
        except Pix2PixError as exc:
            yield Failed(exc)
            return
        yield ModelReady(_model_of(trainer, final=True), path)
    finally:
        control.done.set()


def _model_of(trainer, final: bool = False):
    from ..model import Pix2PixModel

    # final: the model the user gets (the best validated one with select_best)
    return Pix2PixModel.from_checkpoint(trainer.model_checkpoint() if final else trainer.checkpoint())


def start_training(make_trainer: Callable[[], Any], control: TrainingControl) -> TrainingWorker:
    """A (not yet started) :class:`TrainingWorker` whose ``quit`` stops ``control``."""
    worker = train_events(make_trainer, control)
    worker.control = control
    return worker


@thread_worker
def call(function: Callable, *args, **kwargs):
    """Run ``function(*args, **kwargs)`` in a thread; a :class:`Pix2PixError` is returned as
    :class:`Failed`. torch is imported first (once, under a lock)."""
    try:
        import_torch()
        return function(*args, **kwargs)
    except Pix2PixError as exc:
        return Failed(exc)
