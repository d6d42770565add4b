"""The "Translate" widget: apply a model file to a 2-D image or a stack, in a worker.

The engine (:func:`napari_pix2pix.inference.translate`) does the tiling, padding, stacks and
out-of-memory retries; this widget loads the model in a worker and shows its info (refreshed
when the file changes on disk), offers only the layers the model can take, runs the call in a
worker with an in-dock progress bar, and adds the result as a new layer with a readable unique
name (``nuclei [model]``, ``nuclei [model] 2``; replacing is an explicit option) that keeps the
input's scale, translate and units and records the model file, its hash and the parameters in
``layer.metadata['pix2pix']``. Options come from the schema (``TileConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pathlib import Path

from magicgui.widgets import CheckBox, Container, FileEdit, PushButton
from qtpy.QtCore import QObject, QTimer, Signal
from qtpy.QtWidgets import QHBoxLayout, QWidget

from ..config import TileConfig
from ..errors import InputError
from ._export import add_export_button
from ._common import Coalescer, DockWidget, LayerPicker, ProgressLine, info_label, set_enabled, when_alive
from ._form import OptionsForm
from ._layers import error_text, layer_array, unique_name
from ._workers import Failed, call
from ._colorize import add_result_layers, maps_controls, translate_maps_data
from .functions import file_key, load_model, model_accepts, model_defaults, model_summary

TILE_BASIC = ("tile", "mode")


@dataclass
class LayerSnapshot:
    """What the worker needs of a layer, read on the GUI thread (workers never touch layers)."""

    name: str
    data: np.ndarray
    scale: tuple
    translate: tuple
    rgb: bool = False
    units: tuple | None = None
    axis_labels: tuple | None = None
    metadata: dict = field(default_factory=dict)

    @classmethod
    def of(cls, layer) -> "LayerSnapshot":
        return cls(layer.name, layer_array(layer), tuple(layer.scale), tuple(layer.translate),
                   bool(getattr(layer, "rgb", False)), getattr(layer, "units", None),
                   getattr(layer, "axis_labels", None))


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    progressed = Signal(int, int)


def _load_with_summary(path: str):
    """Load a model file and describe it (worker thread: imports torch)."""
    model = load_model(path, "cpu")
    return model, model_summary(model), file_key(path)


class TranslateWidget(DockWidget):
    """Model file (with its info), input layer (only those the model can take), the schema's
    ``TileConfig`` options, and "replace previous output".

    :meth:`run` translates in a worker; :attr:`last_layer` is the layer added last,
    :attr:`worker` is None when idle, :attr:`model` the loaded model (None until the loader
    worker returns), :meth:`check_model_file` reloads the info when the file changed on disk.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.model_path = FileEdit(label="model file", mode="r", filter="*.safetensors", value="")
        self.info = info_label("no model chosen")
        self.input_layer = LayerPicker(napari_viewer, "input", accept=self._accepts)
        self.tile_form = OptionsForm(TileConfig, basic=TILE_BASIC, title="advanced", defer=True)
        self.replace = CheckBox(label="replace previous output", value=False,
                                tooltip="update the layer of the previous translation of this input with this "
                                        "model instead of adding a new layer")
        self.run_button = PushButton(text="Translate")
        self.cancel_button = PushButton(text="Cancel")
        buttons = QWidget()
        buttons.setLayout(QHBoxLayout())
        buttons.layout().setContentsMargins(0, 0, 0, 0)
        buttons.layout().addWidget(self.run_button.native)
        buttons.layout().addWidget(self.cancel_button.native)
        self.progress_line = ProgressLine("tile")
        self.add(Container(widgets=[self.model_path]))  # a Container shows the labels
        self.add(self.info)
        self.add(Container(widgets=[self.input_layer]))
        self.add(self.tile_form.basic)
        self.samples, self.realism = maps_controls()  # issue 18: uncertainty and realism layers
        self.add(Container(widgets=[self.samples, self.realism]))
        self.add(self.replace)
        self.add(self.tile_form.collapsible)
        self.add(buttons)
        # issue 19: the loaded (or just trained) model as ONNX or a bioimage.io package, in a worker
        self.export_button = add_export_button(self, lambda: self._path() or self.state.model)
        self.add(self.progress_line)
        self.add(self.message)
        self.add_stretch()

        self.worker = None
        self.map_layers = []
        self.loader = None
        self.model = None
        self.model_key = None  # (path, size, mtime) of the file the info describes
        self.last_layer = None
        self.progress = None
        self._outputs: dict = {}  # (input name, model file) -> layer added for it
        self._cancel = False
        self._relay = _Relay()
        self._tiles = Coalescer(lambda done_total: self.progress_line.update(*done_total), 0.1, self)
        self._relay.progressed.connect(self._on_progress)
        self.model_path.changed.connect(self._on_model_path)
        self.run_button.changed.connect(lambda *_: self.run())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        self.input_layer.changed.connect(self._update_buttons)
        self.state.model_changed.connect(self._on_trained_model)
        self.later(self.tile_form.build_basic)  # a turn after the dock shows
        self._watch = QTimer(self)  # a cheap stat of the model file: its info never goes stale
        self._watch.setInterval(1000)
        self._watch.timeout.connect(when_alive(self.check_model_file))
        self._watch.start()
        self._update_buttons()

    def __getattr__(self, name):
        form = self.__dict__.get("tile_form")
        if form is not None and name in form:
            return form[name]
        raise AttributeError(name)

    # ----------------------------------------------------------------------------- model
    def _path(self) -> str | None:
        value = self.model_path.value
        return str(value) if value and str(value) not in ("", ".") else None

    def _accepts(self, layer) -> bool:
        model = self.__dict__.get("model") or (self.state.model if self._path() is None else None)
        return model is None or model_accepts(model, layer)

    def _on_model_path(self, *_) -> None:
        self.model, self.model_key = None, None
        self.input_layer.set_filter(self._accepts)
        if self._path() is None:
            self.info.value = "no model chosen"
            self._update_buttons()
            return
        self.load()

    def load(self) -> None:
        """(Re)load the chosen model file in a worker; the info, the input list and the
        defaults follow it when it returns."""
        path = self._path()
        self.info.value = f"loading {Path(path).name}..."
        loader = call(_load_with_summary, path)
        self.loader = loader
        loader.returned.connect(when_alive(lambda result, w=loader, p=path: self._on_loaded(w, p, result)))
        loader.errored.connect(when_alive(lambda exc: self._on_load_error(exc)))
        loader.finished.connect(when_alive(lambda w=loader: self._loader_done(w)))
        self._update_buttons()
        self.run_in_background(loader)

    def _loader_done(self, loader) -> None:
        if self.loader is loader:
            self.loader = None
        self._update_buttons()

    def _on_load_error(self, exc) -> None:
        self.info.value = "no usable model"
        self.show_error(exc, notify_user=False)

    def _on_loaded(self, loader, path, result) -> None:
        if loader is not self.loader or path != self._path():
            return  # a newer choice replaced this one
        if isinstance(result, Failed):
            self.model, self.model_key = None, file_key(path)
            self.info.value = "no usable model"
            self.show_error(result.error)
            self.input_layer.set_filter(self._accepts)
            return
        self.model, summary, self.model_key = result
        self.info.value = summary
        self.input_layer.set_filter(self._accepts)
        for name, value in model_defaults(self.model).items():
            self.tile_form.set(name, value)
        self.state.set_loaded_model(self.model)
        self.show_message("model loaded.")

    def check_model_file(self) -> bool:
        """Reload the model when its file changed on disk (size or mtime); True when a reload
        started. Called every second, and before each translation."""
        path = self._path()
        if path is None or self.loader is not None or self.model_key is None:
            return False
        if file_key(path) == self.model_key:
            return False
        self.show_message(f"{Path(path).name} changed on disk; reloading.")
        self.model, self.model_key = None, None
        self.load()
        return True

    def _on_trained_model(self, state) -> None:
        if state.model_path and self._path() is None:
            self.model_path.value = state.model_path
        self.input_layer.set_filter(self._accepts)
        self._update_buttons()

    def _update_buttons(self, *_) -> None:
        why = ""
        if self.worker is not None:
            why = "a translation is running (Cancel stops it)"
        elif self.loader is not None:
            why = "the model is loading"
        elif self._path() is None and self.state.model is None:
            why = "choose a model file"
        elif self._path() is not None and self.model is None:
            why = "the model file could not be loaded (see the message)"
        elif self.input_layer.value is None:
            why = ("no layer this model can take: open one with the model's input channels"
                   if self.input_layer.accept is not None and self.model is not None else "open an image first")
        set_enabled(self.run_button, not why, why, "translate the input layer with the model")
        set_enabled(self.cancel_button, self.worker is not None, "nothing is being translated",
                    "stop after the current tile")

    # ------------------------------------------------------------------------------- run
    def run(self) -> bool:
        """Translate the chosen layer in a worker; False (with a message) when it cannot start."""
        if self.worker is not None:
            self.show_message("a translation is already running; wait or press Cancel.", "warning")
            return False
        layer = self.input_layer.value
        path = self._path()
        try:
            if layer is None:
                raise InputError("no input layer.", "open an image (File > Open Sample > Pix2Pix) and choose it.")
            if path is not None:
                if self.loader is not None or self.check_model_file() or self.model is None:
                    raise InputError("the model is still loading.", "press Translate again in a moment.")
                model = self.model
            elif self.state.model is not None:
                model = self.state.model
            else:
                load_model(None)  # raises the 'choose a model file' message
            config = self.tile_form.build()
            snapshot = LayerSnapshot.of(layer)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.show_error(exc)
            return False
        self._cancel = False
        # the in-dock progress line only (napari's progress bar runs processEvents() per update)
        self._tiles.drop()
        self.progress_line.start(0)
        self.show_message(f"translating {layer.name}...")
        self.worker = call(translate_maps_data, snapshot, model, model_path=path, tile=config.tile,
                           overlap=config.overlap, mode=config.mode, device=config.device,
                           batch_size=config.batch_size, samples=int(self.samples.value),
                           realism=bool(self.realism.value), progress=self._relay.progressed.emit,
                           cancel=lambda: self._cancel)
        self.worker.returned.connect(when_alive(self._on_result))
        self.worker.errored.connect(when_alive(self._on_error))
        self.worker.finished.connect(when_alive(self._on_done))
        self._update_buttons()
        self.worker.start()
        return True

    def cancel(self) -> None:
        if self.worker is None:
            self.show_message("nothing to cancel.", "warning")
            return
        self._cancel = True

    def _on_progress(self, done: int, total: int) -> None:
        self._tiles.put((done, total))  # at most 10 redraws a second

    def _on_result(self, result) -> None:
        if isinstance(result, Failed):
            self.show_error(result.error)
            return
        from napari.layers import Layer

        results = [result] if isinstance(result, tuple) else list(result)
        (data, meta, kind), extras = results[0], results[1:]
        info = meta["metadata"]["pix2pix"]
        key = (info.get("source_layer"), info.get("model_file") or info.get("model_sha256"))
        previous = self._outputs.get(key)
        if self.replace.value and previous is not None and previous in self.viewer.layers \
                and previous.__class__.__name__.lower() == kind and previous.data.ndim == data.ndim:
            previous.data = data
            previous.metadata = meta["metadata"]
            self.last_layer = previous
        else:
            meta = {**meta, "name": unique_name(self.viewer, meta["name"])}
            self.last_layer = self.viewer.add_layer(Layer.create(data, meta, kind))
        self._outputs[key] = self.last_layer
        self.map_layers = add_result_layers(self.viewer, extras) if extras else []  # [uncertainty] / [realism]
        self.show_message(f"added {self.last_layer.name!r} {tuple(np.shape(data))} "
                          f"(tile {info['tile']}, overlap {info['overlap']}, mode {info['mode']}).")

    def _on_error(self, exc) -> None:  # unexpected: napari already notified it
        self.show_error(exc, notify_user=False)

    def _on_done(self) -> None:
        self._tiles.drop()
        self.progress_line.finish()
        self.worker = None
        self._update_buttons()
