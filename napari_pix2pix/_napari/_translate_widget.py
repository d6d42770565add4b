"""The "Translate" widget: apply a model file to a 2-D image or a stack, in a worker.

The engine (:func:`napari_pix2pix.inference.translate`) does the tiling, padding, stacks and
out-of-memory retries; this widget shows the model's info, runs the call in a worker with a
progress bar, and adds the result as a layer that keeps the input's scale, translate and units
and records the model file, its hash and the parameters in ``layer.metadata['pix2pix']``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, SpinBox
from qtpy.QtCore import QObject, Signal

from ..config import DEVICE_CHOICES, TEST_MODE_CHOICES, TileConfig
from ..errors import InputError
from ._colorize import add_result_layers, maps_controls, translate_maps_data
from ._common import DockWidget, LayerPicker, info_label
from ._layers import error_text, layer_array
from ._workers import Failed, call
from .functions import load_model, model_summary


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


class TranslateWidget(DockWidget):
    """Model file (with its info), input layer, tile size and overlap, device and test-time mode.

    :meth:`run` translates in a worker; :attr:`last_layer` is the layer added last and
    :attr:`worker` is None when idle.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        tile = TileConfig()
        self.model_path = FileEdit(label="model file", mode="r", filter="*.safetensors", value="")
        self.info = info_label("no model chosen")
        self.input_layer = LayerPicker(napari_viewer, "input")
        self.tile = SpinBox(label="tile", value=tile.tile, min=0, max=16384, step=32,
                            tooltip="tile side in pixels; 0 = the whole image at once")
        self.overlap = SpinBox(label="overlap", value=tile.overlap, min=0, max=8192, step=8)
        self.batch_size = SpinBox(label="tiles per batch", value=tile.batch_size, min=1, max=256)
        self.device = ComboBox(label="device", choices=DEVICE_CHOICES, value=tile.device)
        self.devices_label = Label(value="")
        self.mode = ComboBox(label="test-time mode", choices=TEST_MODE_CHOICES, value=tile.mode,
                             tooltip="eval: deterministic (default); train: the paper's dropout and batch statistics")
        self.samples, self.realism = maps_controls()  # issue 18: uncertainty and realism layers
        self.run_button = PushButton(text="Translate")
        self.cancel_button = PushButton(text="Cancel")
        self.form = Container(widgets=[self.model_path, self.info, self.input_layer, self.tile, self.overlap,
                                       self.batch_size, self.device, self.devices_label, self.mode,
                                       self.samples, self.realism])
        self.add(self.form)
        self.add(self.run_button)
        self.add(self.cancel_button)
        self.add(self.message)
        self.layout().addStretch()

        self.worker = None
        self.model = None
        self.last_layer = None
        self.map_layers = []
        self.progress = None
        self._cancel = False
        self._relay = _Relay()
        self._relay.progressed.connect(self._on_progress)
        self.model_path.changed.connect(self._on_model_path)
        self.run_button.changed.connect(lambda *_: self.run())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        self.state.model_changed.connect(self._on_trained_model)
        try:
            from ..devices import describe_devices

            self.devices_label.value = f"found: {describe_devices()}"
        except Exception as exc:  # noqa: BLE001
            self.devices_label.value = f"devices unknown ({exc})"

    # ----------------------------------------------------------------------------- model
    def _path(self) -> str | None:
        value = self.model_path.value
        return str(value) if value and str(value) not in ("", ".") else None

    def _on_model_path(self, *_) -> None:
        self.model = None
        if self._path() is None:
            self.info.value = "no model chosen"
            return
        try:
            self.model = load_model(self._path(), "cpu")
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.info.value = "no usable model"
            self.show_error(exc)
            return
        self.info.value = model_summary(self.model)
        self.show_message("model loaded.")

    def _on_trained_model(self, state) -> None:
        if state.model_path and self._path() is None:
            self.model_path.value = state.model_path

    # ------------------------------------------------------------------------------- run
    def run(self) -> bool:
        """Translate the chosen layer in a worker; False (with a message) when it cannot start."""
        if self.worker is not None:
            self.show_message("a translation is already running; wait or press Cancel.", "warning")
            return False
        layer = self.input_layer.value
        try:
            if layer is None:
                raise InputError("no input layer.", "open an image (File > Open Sample > Pix2Pix) and choose it.")
            path = self._path()
            if path is not None:
                model = load_model(path, self.device.value)
            elif self.state.model is not None:
                model = self.state.model
            else:
                load_model(None)  # raises the 'choose a model file' message
            config = TileConfig(tile=int(self.tile.value), overlap=int(self.overlap.value), mode=self.mode.value,
                                device=self.device.value, batch_size=int(self.batch_size.value))
            snapshot = LayerSnapshot.of(layer)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.show_error(exc)
            return False
        from napari.utils import progress

        self._cancel = False
        self.progress = progress(total=0, desc=f"pix2pix: translating {layer.name}")
        self.show_message(f"translating {layer.name}...")
        self.worker = call(translate_maps_data, snapshot, model, model_path=path, tile=config.tile,
                           overlap=config.overlap, mode=config.mode, device=config.device,
                           batch_size=config.batch_size, samples=int(self.samples.value),
                           realism=bool(self.realism.value), progress=self._relay.progressed.emit,
                           cancel=lambda: self._cancel)
        self.worker.returned.connect(self._on_result)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_done)
        self.worker.start()
        return True

    def cancel(self) -> None:
        if self.worker is None:
            self.show_message("nothing to cancel.", "warning")
            return
        self._cancel = True

    def _on_progress(self, done: int, total: int) -> None:
        if self.progress is not None:
            if self.progress.total != total:
                self.progress.total = total
            self.progress.update(max(done - self.progress.n, 0))

    def _on_result(self, result) -> None:
        if isinstance(result, Failed):
            self.show_error(result.error)
            return
        added = add_result_layers(self.viewer, result)  # output, then [uncertainty] / [realism] layers
        self.last_layer, self.map_layers = added[0], added[1:]
        data, meta, _ = result[0]
        info = meta["metadata"]["pix2pix"]
        self.show_message(f"added {self.last_layer.name!r} {tuple(np.shape(data))} "
                          f"(tile {info['tile']}, overlap {info['overlap']}, mode {info['mode']}).")

    def _on_error(self, exc) -> None:
        self.show_message(error_text(exc), "error")

    def _on_done(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        self.worker = None
