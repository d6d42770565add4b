"""Per-viewer shared state: what the Pair widget built, what the Train widget is doing.

One :class:`Pix2PixState` exists per viewer (:func:`get_state`); widgets talk to each other
only through it. It holds no strong reference to the viewer (so viewers are garbage-collected)
and no Qt object: its signals are :mod:`psygnal` signals, emitted on the GUI thread.
"""

from __future__ import annotations

import weakref
from typing import Any

from psygnal import Signal


class Pix2PixState:
    """Dataset, training and model shared by the widgets of one viewer.

    Signals: ``dataset_changed(state)``, ``model_changed(state)``, ``preview(PreviewEvent)``
    (each preview of a running training), ``training_changed(bool)``, ``snapshot(model)`` (the
    model being trained, after :meth:`request_snapshot`), ``patch_size(int)`` (a preset in the
    Train dock chose a patch size).
    """

    dataset_changed = Signal(object)
    model_changed = Signal(object)
    preview = Signal(object)
    training_changed = Signal(bool)
    snapshot = Signal(object)  # a Pix2PixModel copied from the running training
    model_loaded = Signal(object)  # a Pix2PixModel loaded from a file by a widget
    patch_size = Signal(int)  # a preset chose a patch size (the Pair dock's field follows)

    def __init__(self, viewer=None) -> None:
        from ._layers import DeferredLayers

        self.layers = DeferredLayers(viewer) if viewer is not None else None  # shared queue of layer additions
        self.dataset = None          # PairedDataset (full)
        self.train_dataset = None    # PairedDataset used for training
        self.val_dataset = None      # held-out split or None
        self.data_config = None      # DataConfig used to pair
        self.dataset_error: str | None = None  # why the last pairing failed (no dataset then)
        self.loaded_model = None     # model chosen in Translate/Discriminator (defaults follow it)
        self.crop: int | None = None  # patch size chosen in the Pair widget
        self.model = None            # Pix2PixModel from the last training (in memory)
        self.model_path: str | None = None  # file of that model, when it was saved
        self.geometry = None         # receptive-field Geometry of the discriminator being trained
        self.training = False
        self.control = None          # TrainingControl of the running training
        self.last_preview = None     # last PreviewEvent
        self.preview_layers: dict[str, Any] = {}  # role -> layer name of the preview layers
        self.preview_anchor = None   # name/scale/translate of the preview input layer

    def set_dataset(self, dataset, train, val, data_config, crop: int) -> None:
        self.dataset, self.train_dataset, self.val_dataset = dataset, train, val
        self.data_config, self.crop = data_config, int(crop)
        self.dataset_error = None
        self.dataset_changed.emit(self)

    def clear_dataset(self, error: str) -> None:
        """A failed pairing: no dataset (so Start cannot train on a stale one), and why."""
        self.dataset = self.train_dataset = self.val_dataset = None
        self.data_config, self.crop = None, None
        self.dataset_error = error
        self.dataset_changed.emit(self)

    def set_loaded_model(self, model) -> None:
        """A model file was loaded in a widget: other widgets take their defaults from it."""
        self.loaded_model = model
        self.model_loaded.emit(model)

    def set_model(self, model, path: str | None = None) -> None:
        self.model, self.model_path = model, path
        self.model_changed.emit(self)

    def request_snapshot(self) -> bool:
        """Ask the running training for a copy of its model (emitted by ``snapshot``); False
        when nothing is training."""
        if not self.training or self.control is None:
            return False
        self.control.request_snapshot()
        return True

    def set_training(self, running: bool) -> None:
        self.training = bool(running)
        self.training_changed.emit(self.training)


_STATES: "weakref.WeakKeyDictionary[Any, Pix2PixState]" = weakref.WeakKeyDictionary()


def get_state(viewer) -> Pix2PixState:
    """The state shared by the widgets of ``viewer`` (created on first use)."""
    state = _STATES.get(viewer)
    if state is None:
        state = _STATES[viewer] = Pix2PixState(viewer)
    return state
