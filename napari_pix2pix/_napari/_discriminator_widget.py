"""The "Discriminator" widget: the PatchGAN's verdict as maps over the image.

Maps for the real pair (input, target) and the fake pair (input, G(input)) come from the engine
(:func:`napari_pix2pix.discriminator_map.discriminator_maps`); each is an image layer with a
diverging colormap, placed so that every cell sits over the centre of its receptive field.
Clicking a cell draws that cell's receptive field as a rectangle. With "follow training" the
maps of the training preview patch are refreshed at every preview.
"""

from __future__ import annotations

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton

from ..config import TileConfig
from ..errors import InputError, ModelFileError
from ._common import DockWidget, when_alive, LayerPicker, info_label, set_enabled
from ._form import napari_options, widget_for
from ._layers import HELPER_KEY, channel_axis, helper_name, remove_helpers, upsert_image
from ._workers import Failed, call
from .functions import (compute_maps, layer_planes, load_model, maps_layer_data, preview_maps,
                        receptive_field_rectangle)

MODEL_SOURCES = ("model file", "current training")
GENERATED = "(generated output)"
RF_LAYER = helper_name("receptive field")
_WAITING = "waiting for a snapshot of the training model"


def maps_of(model_or_path, source, target, **kwargs):
    """Load the model when given a path, then compute both maps (worker thread):
    ``(model, real map or None, fake map)``."""
    model = load_model(model_or_path, "auto") if isinstance(model_or_path, str) else model_or_path
    real, fake = compute_maps(model, source, target, **kwargs)
    return model, real, fake


class DiscriminatorWidget(DockWidget):
    """Pick a model (file or the current training), an input and a target layer or the generated
    output; :meth:`compute` adds the map layers, :meth:`select_cell` (also on click) draws a
    cell's receptive field. :attr:`maps` holds the last ``{'real': map|None, 'fake': map}``."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        v = napari_viewer
        self.model_source = ComboBox(label="model", choices=MODEL_SOURCES, value=MODEL_SOURCES[0])
        self.model_path = FileEdit(label="model file", mode="r", filter="*.safetensors", value="")
        self.input_layer = LayerPicker(v, "input")
        self.target_layer = LayerPicker(v, "target", extra=(GENERATED, None))
        self.mode = widget_for(next(o for o in napari_options(TileConfig) if o.name == "mode"),
                               label="test-time mode")
        self.follow = CheckBox(label="follow training (preview patch)", value=False)
        self.compute_button = PushButton(text="Compute maps")
        self.clean_button = PushButton(text="Remove helper layers",
                                       tooltip="remove every 'pix2pix: ...' layer (maps, boxes, previews)")
        self.form = Container(widgets=[self.model_source, self.model_path, self.input_layer, self.target_layer,
                                       self.mode, self.follow])
        self.add(self.form)
        self.add(self.compute_button)
        self.stats = info_label("")
        self.add(self.stats)
        self.add(self.message)
        self.add(self.clean_button)
        self.add_stretch()

        self.worker = None
        self.maps: dict = {}
        self.map_layers: dict = {}
        self.placement_layer = None  # the layer whose pixels the current maps refer to
        self._pending = None

        self.last_rectangle = None
        self.compute_button.changed.connect(lambda *_: self.compute())
        self.clean_button.changed.connect(lambda *_: self.show_message(
            f"removed {remove_helpers(self.viewer)} helper layer(s)."))
        self.model_source.changed.connect(self._show_source)
        self.model_source.changed.connect(self._update_button)
        self.model_path.changed.connect(self._update_button)
        self.input_layer.changed.connect(self._update_button)
        self.state.model_changed.connect(self._update_button)
        self.state.training_changed.connect(self._update_button)
        self.state.preview.connect(self._on_preview)
        self.state.model_changed.connect(self._on_model)
        self.state.training_changed.connect(self._on_training)
        self._show_source()
        self._update_button()
        self.show_message("choose a model and an input layer, then Compute maps. Green: judged real, "
                          "pink: judged fake. Click a map cell to see its receptive field.")

    def _show_source(self, *_):
        self.model_path.visible = self.model_source.value == MODEL_SOURCES[0]

    def _update_button(self, *_) -> None:
        why = ""
        if self.worker is not None:
            why = "maps are being computed"
        elif self.input_layer.value is None:
            why = "open an image (or labels) layer to judge"
        elif self.model_source.value == MODEL_SOURCES[0] and not self._path_set():
            why = "choose a model file (or 'current training')"
        elif self.model_source.value == MODEL_SOURCES[1] and not self.state.training and self.state.model is None:
            why = "no model from training yet: train in the Train widget first"
        set_enabled(self.compute_button, not why, why, "compute the discriminator's maps of the current plane")

    def _on_model(self, state):
        if state.model_path and not self._path_set():
            self.model_path.value = state.model_path

    def _path_set(self) -> bool:
        return bool(self.model_path.value) and str(self.model_path.value) not in ("", ".")

    # ----------------------------------------------------------------------------- model
    def _model(self):
        """The in-memory model, a model file path (loaded in the worker), or None when a snapshot
        of the running training is needed."""
        if self.model_source.value == MODEL_SOURCES[1]:
            if self.state.training:
                return None  # a snapshot is requested from the running training
            if self.state.model is not None:
                return self.state.model
            raise ModelFileError("no model from training yet.",
                                 "train (or stop a training) in the Train widget first, tick 'follow training' to "
                                 "watch the preview maps, or choose a model file.")
        if not self._path_set():
            load_model(None)  # raises the 'choose a model file' message
        path = str(self.model_path.value)
        from pathlib import Path

        if not Path(path).expanduser().is_file():
            load_model(path)  # raises the 'does not exist' message
        return path

    # --------------------------------------------------------------------------- compute
    def compute(self) -> bool:
        """Start computing the maps in a worker; False (with a message) when it cannot."""
        if self.worker is not None:
            self.show_message("maps are already being computed; wait a moment.", "warning")
            return False
        source_layer, target_layer = self.input_layer.value, self.target_layer.value
        try:
            if source_layer is None:
                raise InputError("no input layer.", "open an image and choose it as input.")
            model = self._model()
            source, target = layer_planes(source_layer, target_layer, self.viewer)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.show_error(exc)
            return False
        if model is None:  # the model training now: copied between two steps, then computed
            self._pending = (source_layer, target_layer, source, target)
            self.worker = _WAITING
            self.state.snapshot.connect(self._on_snapshot)
            self.state.request_snapshot()
            self.show_message("asking the running training for its current model...")
            return True
        self._start_maps(model, source_layer, target_layer, source, target)
        return True

    def _on_snapshot(self, model) -> None:
        self.state.snapshot.disconnect(self._on_snapshot)
        (source_layer, target_layer, source, target), self._pending = self._pending, None
        self.worker = None
        self._start_maps(model, source_layer, target_layer, source, target)

    def _start_maps(self, model, source_layer, target_layer, source, target) -> None:
        self.show_message("computing discriminator maps...")
        self.worker = call(maps_of, model, source, target, channel_axis_source=channel_axis(source_layer),
                           channel_axis_target=channel_axis(target_layer) if target_layer is not None else None,
                           mode=self.mode.value)
        self.worker.returned.connect(when_alive(lambda result: self._on_maps(result, source_layer, target_layer)))
        self.worker.errored.connect(when_alive(lambda exc: self.show_error(exc, notify_user=False)))
        self.worker.finished.connect(when_alive(self._on_done))
        self._update_button()
        self.worker.start()

    def _on_done(self):
        self.worker = None
        self._update_button()

    def _on_maps(self, result, source_layer, target_layer) -> None:
        if isinstance(result, Failed):
            self.show_error(result.error)
            return
        model, real, fake = result
        layers = maps_layer_data(real, fake, source_layer, target_layer, model=model,
                                 model_path=getattr(model, "path", None))
        self._show_maps(layers, real, fake, source_layer)

    def _on_training(self, running: bool) -> None:
        """Training starts: queue blank preview maps (layers are added before the worker runs).
        Training ends while a snapshot is awaited: use the final model instead."""
        if not running and self._pending is not None and self.worker == _WAITING:
            self.state.snapshot.disconnect(self._on_snapshot)
            pending, self._pending, self.worker = self._pending, None, None
            if self.state.model is not None:
                self._start_maps(self.state.model, *pending)
            else:
                self.show_message("training ended before its model could be copied; compute again.", "warning")
            return
        if running and self.follow.value and self.state.geometry is not None and self.state.crop:
            from types import SimpleNamespace

            import numpy as np

            h, w = self.state.geometry.map_size(self.state.crop, self.state.crop)
            blank = np.zeros((h, w), np.float32)
            self._on_preview(SimpleNamespace(step=0, source=np.zeros((1, self.state.crop, self.state.crop)),
                                             d_real=blank, d_fake=blank))

    def _on_preview(self, event) -> None:
        """Refresh the preview maps from a training PreviewEvent (when following)."""
        if not self.follow.value or self.state.geometry is None:
            return
        anchor = self.state.preview_anchor  # where the Train widget shows the preview input
        real, fake = preview_maps(event, self.state.geometry)
        self.maps = {"real": real, "fake": fake}
        self.placement_layer = anchor
        for (data, meta, _kind), role in zip(maps_layer_data(real, fake, anchor, None), ("real", "fake")):
            meta = dict(meta)
            self.state.layers.put(meta.pop("name"), data,
                                  on_added=lambda layer, role=role: self._attach(layer, role), **meta)
        self.stats.value = f"training step {event.step}:\n" + self.summary()

    def _show_maps(self, layers, real, fake, source_layer) -> None:
        self.maps = {"real": real, "fake": fake}
        self.map_layers = {}
        self.placement_layer = source_layer
        for (data, meta, _kind), role in zip(layers, (["real", "fake"] if real is not None else ["fake"])):
            meta = dict(meta)
            name = meta.pop("name")
            # added one per event-loop turn (adding a layer is the slow part), updated in place after
            self.state.layers.put(name, data, on_added=lambda layer, role=role: self._attach(layer, role), **meta)
        self.state.layers.when_idle(self._select_fake_map)
        self.stats.value = self.summary()
        self.show_message("maps added; click a cell of a map to see its receptive field.")

    def _select_fake_map(self) -> None:
        """Select the fake map, so that clicking shows a receptive field."""
        fake = self.map_layers.get("fake")
        if fake is not None and fake in self.viewer.layers:
            self.viewer.layers.selection.active = fake

    def _attach(self, layer, role: str) -> None:
        if self.on_map_click not in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.append(self.on_map_click)
        self.map_layers[role] = layer

    def summary(self) -> str:
        """Mean score and fraction judged real of each map, plus the receptive field."""
        parts = []
        for role in ("real", "fake"):
            m = self.maps.get(role)
            if m is not None:
                parts.append(f"{role} pair: mean score {m.mean_score:.2f}, {100 * m.fraction_real:.0f}% of "
                             f"{m.logits.size} patches judged real")
        m = self.maps.get("fake")
        if m is not None:
            rf = "whole image" if m.global_pool else f"{m.rf} px, stride {m.jump} px"
            parts.append(f"receptive field {rf}")
        return "\n".join(parts)

    # ----------------------------------------------------------------------------- clicks
    def on_map_click(self, layer, event):
        """Mouse callback of the map layers: show the receptive field of the clicked cell."""
        if getattr(event, "type", "mouse_press") == "mouse_press":
            self.select_cell(event.position)

    def select_cell(self, position):
        """Draw the receptive field of the map cell under world ``position`` as a rectangle on
        the ``pix2pix receptive field`` Shapes layer (updated in place); returns its corners or
        None when ``position`` is outside the map."""
        dmap = self.maps.get("fake")
        if dmap is None:
            return None
        rect = receptive_field_rectangle(dmap, self.placement_layer, position)
        if rect is None:
            return None
        active = self.viewer.layers.selection.active
        if RF_LAYER in self.viewer.layers:
            shapes = self.viewer.layers[RF_LAYER]
            shapes.data = [rect]
            shapes.shape_type = ["rectangle"]
        else:
            shapes = self.viewer.add_shapes([rect], shape_type="rectangle", name=RF_LAYER, edge_color="yellow",
                                            face_color="transparent", edge_width=max(dmap.jump / 4, 1.0),
                                            metadata={HELPER_KEY: True})
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active  # keep clicking on the map
        from ._layers import world_to_pixel

        i, j = dmap.cell_at(*world_to_pixel(position, self.placement_layer))
        text = []
        for role in ("real", "fake"):
            m = self.maps.get(role)
            if m is not None:
                text.append(f"{role} {m.logits[i, j]:+.2f} ({'real' if m.logits[i, j] > 0 else 'fake'})")
        self.show_message(f"cell ({i}, {j}), box {tuple(int(v) for v in dmap.cell_box(i, j))}: " + ", ".join(text))
        self.last_rectangle = rect
        return rect
