"""The "Pair data" widget: build the paired dataset the Train widget uses.

Sources: two layers, two folders, a folder of side-by-side AB images, or channels of one
layer. The engine validates and normalises (:mod:`napari_pix2pix.data`); this widget only
collects the options, shows the report and a few example patches, and stores the result in
the shared state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, LineEdit, PushButton, SpinBox, TextEdit

from ..config import DataConfig, NormConfig, TrainConfig
from ..data.spec import PairSpec
from ..errors import DatasetError, InputError, Pix2PixError
from ._colorize import colorize_from_layers
from ._common import DockWidget, when_alive, LayerPicker, set_enabled
from ._form import OptionsForm, napari_options, widget_for
from ._layers import error_text, helper_name, is_helper, is_rgb, layer_array, model_to_display, remove_helpers, \
    upsert_image
from ._workers import Failed, call

SOURCES = ("two layers", "two folders", "AB folder", "channels of one layer")
EXAMPLE_A, EXAMPLE_B = helper_name("examples A"), helper_name("examples B")
# DataConfig fields this dock sets itself (channels from the text boxes, label detection automatic)
DATA_FIXED = ("channels_a", "channels_b", "a_is_labels", "b_is_labels")
DATA_BASIC = ("task", "validation_fraction")


@dataclass
class PairJob:
    """What the worker needs to pair, read on the GUI thread (workers never touch layers)."""

    kind: Any  # a PairSpec (run once through napari_pix2pix.data.pair), a name in napari_pix2pix.data, or a callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def run_pair_job(job: PairJob, config: DataConfig) -> tuple[Any, Any, Any]:
    """Build the dataset and split it (in a worker thread): ``(dataset, train, val)``."""
    from .. import data

    if isinstance(job.kind, data.PairSpec):
        dataset = data.pair(job.kind)
    else:
        build = job.kind if callable(job.kind) else getattr(data, job.kind)
        dataset = build(*job.args, **job.kwargs)
    train, val = dataset.holdout(config.validation_fraction)
    return dataset, train, val


def _channels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise InputError(f"channels {text!r} are not a list of channel numbers.", "type e.g. 0 or 0,1,2.")
    return values


def format_dataset(dataset, train, val) -> str:
    """The report of a successful pairing: counts, shapes, dtypes, label detection, split."""
    d = dataset.describe()
    lines = [f"{d['pairs']} training pair(s) (2-D slices), {d['pixels']:,} pixels; "
             f"{d['in_channels']} -> {d['out_channels']} model channel(s)"]
    for side in ("a", "b"):
        s = d[side]
        shapes = ", ".join(f"{n} x [{k}]" for k, n in s["shapes"].items())
        norm = s["normalization"]
        lines.append(f"{side.upper()}: {s['dtype']}, {s['channels']} channel(s), "
                     f"{'labels' if s['is_labels'] else 'intensities'}, {norm.get('mode')} "
                     f"[{norm.get('low', 0):.4g}, {norm.get('high', 0):.4g}]; {shapes}")
    if val is not None:
        lines.append(f"split: {len(train)} training / {len(val)} validation pair(s) "
                     f"({train.source.get('split', {}).get('mode', '')})")
    else:
        lines.append("split: none (no validation metrics)")
    lines.append("no problems")
    return "\n".join(lines)


class PairDataWidget(DockWidget):
    """Choose a paired source, check it, set patch size, normalisation and the validation split.

    :meth:`pair` builds the dataset in a worker (also bound to the "Pair" button); the result
    goes to the shared state (``state.train_dataset``/``state.val_dataset``/``state.crop``); a
    failed pairing clears it (``state.dataset_error`` says why).
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        v = napari_viewer
        self.source = ComboBox(label="source", choices=SOURCES, value=SOURCES[0])
        self.layer_a = LayerPicker(v, "A (input)")
        self.layer_b = LayerPicker(v, "B (target)")
        self.folder_a = FileEdit(label="folder A", mode="d")
        self.folder_b = FileEdit(label="folder B", mode="d")
        self.ab_folder = FileEdit(label="AB folder", mode="d")
        self.data_form = OptionsForm(DataConfig, exclude=DATA_FIXED, basic=DATA_BASIC, title="advanced pairing")
        self.norm_a_form = OptionsForm(NormConfig, title="advanced normalisation A", labels={"mode": "normalise A"},
                                       defer=True)
        self.norm_b_form = OptionsForm(NormConfig, title="advanced normalisation B", labels={"mode": "normalise B"},
                                       defer=True)
        self.validation = self.data_form["validation_fraction"]
        self.task = self.data_form["task"]  # issue 18: colorize pairs come from RGB layer A alone
        self.channel_layer = LayerPicker(v, "layer", kinds=("image",))
        self.channels_a = LineEdit(label="channels A", value="0", tooltip="channel numbers of A, e.g. 0 or 0,1,2")
        self.channels_b = LineEdit(label="channels B", value="1", tooltip="channel numbers of B")
        self.channel_axis = SpinBox(label="channel axis", value=-1, min=-8, max=7)
        crop = next(o for o in napari_options(TrainConfig) if o.name == "crop")
        self.crop = widget_for(crop, label="patch size")
        self.examples = SpinBox(label="example patches", value=3, min=0, max=16,
                                tooltip="model-space patches shown as helper layers after pairing (0: none)")
        self.pair_button = PushButton(text="Pair")
        self.clean_button = PushButton(text="Remove helper layers",
                                       tooltip="remove every 'pix2pix: ...' layer (examples, previews, maps)")
        self.report = TextEdit(value="")
        self.report.native.setReadOnly(True)
        self.report.native.setMinimumHeight(80)
        self.report.native.setMaximumHeight(160)

        self._groups = {
            SOURCES[0]: [self.layer_a, self.layer_b],
            SOURCES[1]: [self.folder_a, self.folder_b],
            SOURCES[2]: [self.ab_folder],
            SOURCES[3]: [self.channel_layer, self.channels_a, self.channels_b, self.channel_axis],
        }
        self.form = Container(widgets=[self.source, *[w for ws in self._groups.values() for w in ws], self.crop,
                                       self.examples])
        self.add(self.data_form.basic)  # task first: it decides which sources make sense
        self.add(self.form)
        self.add(self.norm_a_form.basic)
        self.add(self.norm_b_form.basic)
        self.add(self.data_form.collapsible)
        self.add(self.norm_a_form.collapsible)
        self.add(self.norm_b_form.collapsible)
        self.add(self.pair_button)
        self.add(self.message)
        self.add(self.report)
        self.add(self.clean_button)
        self.add_stretch()

        self.worker = None
        self.source.changed.connect(self._show_source)
        self.pair_button.changed.connect(self.pair)
        self.clean_button.changed.connect(lambda *_: self.show_message(
            f"removed {remove_helpers(self.viewer)} helper layer(s)."))
        for picker in (self.layer_a, self.layer_b, self.channel_layer):
            picker.changed.connect(self._update_button)
        self.later(self.norm_a_form.build_basic)  # built a turn after the dock shows
        self.later(self.norm_b_form.build_basic)
        self.state.model_loaded.connect(self._follow_model)
        self.state.patch_size.connect(self._follow_patch_size)  # a preset in the Train dock
        self._show_source()
        self._preselect()
        if self.state.loaded_model is not None:
            self._follow_model(self.state.loaded_model)
        self._update_button()

    # ------------------------------------------------------------------------------ ui
    def _show_source(self, *_):
        for name, widgets in self._groups.items():
            for w in widgets:
                w.visible = name == self.source.value
        self._update_button()

    def _update_button(self, *_) -> None:
        why = ""
        if self.worker is not None:
            why = "pairing is running"
        elif self.source.value == SOURCES[0] and (self.layer_a.value is None or self.layer_b.value is None):
            why = "open two image or labels layers (A and B) first"
        elif self.source.value == SOURCES[3] and self.channel_layer.value is None:
            why = "open a multichannel image layer first"
        set_enabled(self.pair_button, not why, why, "check and pair the chosen data")

    def _preselect(self) -> None:
        """Pick a sensible A/B pair: an image for A, a labels (or second) layer for B."""
        layers = [ly for ly in self.layer_a.choices if ly is not None]
        if len(layers) >= 2:
            b = next((ly for ly in layers if ly.__class__.__name__ == "Labels"), layers[-1])
            a = next((ly for ly in layers if ly is not b), layers[0])
            self.layer_a.value, self.layer_b.value = a, b

    def _follow_patch_size(self, crop: int) -> None:
        """A preset chosen in the Train dock sets the patch size (the next pairing uses it)."""
        when_alive(lambda: setattr(self.crop, "value", int(crop)))()

    def _follow_model(self, model) -> None:
        """Defaults follow a loaded model: the direction it was paired with, its patch size, and
        A/B layers of the kinds it was trained on (labels or image)."""
        data = getattr(getattr(model, "checkpoint", None), "data", None) or {}
        direction = (data.get("source") or {}).get("direction")
        if direction:
            self.data_form.set("direction", direction)
        training = getattr(model.checkpoint, "training", None)
        if training is not None and getattr(training, "crop", None):
            self.crop.value = int(training.crop)
        layers = [ly for ly in self.layer_a.choices if ly is not None]
        kinds = {side: "Labels" if data.get(f"{side}_is_labels") else "Image" for side in ("a", "b")}
        a = next((ly for ly in layers if ly.__class__.__name__ == kinds["a"]), None)
        b = next((ly for ly in layers if ly.__class__.__name__ == kinds["b"] and ly is not a), None)
        if a is not None and b is not None:
            self.layer_a.value, self.layer_b.value = a, b

    # ---------------------------------------------------------------------------- action
    def data_config(self) -> DataConfig:
        extra = {}
        if self.source.value == SOURCES[3]:
            extra = {"channels_a": _channels(self.channels_a.value), "channels_b": _channels(self.channels_b.value)}
        return self.data_form.build(norm_a=self.norm_a_form.build(), norm_b=self.norm_b_form.build(),
                                    task=self.task.value, **extra)

    def pair_job(self, config: DataConfig) -> PairJob:
        """What to pair, read from the layers now (on the GUI thread); may raise
        :class:`DatasetError` for a missing choice."""
        kind = self.source.value
        if config.task == "colorize" and kind == SOURCES[0]:
            return PairJob(colorize_from_layers, ([self.layer_a.value], config), {})
        if config.task == "colorize" and kind == SOURCES[1]:
            return PairJob(PairSpec.colorize(self.folder_a.value, config))
        if config.task == "colorize":
            raise DatasetError("the colorize task pairs from RGB layer A or from folder A of RGB images.",
                               f"choose source {SOURCES[0]!r} or {SOURCES[1]!r}.")
        if kind == SOURCES[0]:
            a, b = self.layer_a.value, self.layer_b.value
            if a is None or b is None:
                raise DatasetError("choose two layers (A and B) to pair.",
                                   "open an image and its target (e.g. File > Open Sample > Pix2Pix).")
            if a is b:
                raise DatasetError(f"A and B are the same layer ({a.name!r}).", "choose two different layers.")
            return PairJob(PairSpec.arrays(layer_array(a), layer_array(b), config, rgb_a=is_rgb(a), rgb_b=is_rgb(b),
                                           names=a.name))
        if kind == SOURCES[1]:
            return PairJob(PairSpec.folders(self.folder_a.value, self.folder_b.value, config))
        if kind == SOURCES[2]:
            return PairJob(PairSpec.ab_folder(self.ab_folder.value, config))
        layer = self.channel_layer.value
        if layer is None:
            raise DatasetError("choose a multichannel layer to split.", "open an image with channels first.")
        return PairJob(PairSpec.channels(layer_array(layer), config=config, channel_axis=int(self.channel_axis.value),
                                         name=layer.name))

    def pair(self, *_) -> bool:
        """Check the choices and start pairing in a worker; False (with the reason, and no dataset
        left in the state) when it cannot start. The result arrives in :meth:`_on_paired`."""
        if self.worker is not None:
            self.show_message("pairing is already running; wait a moment.", "warning")
            return False
        try:
            config = self.data_config()
            job = self.pair_job(config)
        except Pix2PixError as exc:
            self._failed(exc)
            return False
        crop = int(self.crop.value)
        self.show_message("pairing...")
        self.report.value = ""
        self.worker = call(run_pair_job, job, config)
        self.worker.returned.connect(when_alive(lambda result: self._on_paired(result, config, crop)))
        self.worker.errored.connect(when_alive(self._on_error))
        self.worker.finished.connect(when_alive(self._on_done))
        self._update_button()
        self.worker.start()
        return True

    def _failed(self, exc: BaseException, notify_user: bool = True) -> None:
        report = getattr(exc, "report", None)
        self.report.value = report.format() if report is not None else error_text(exc)
        self.state.clear_dataset(error_text(exc))
        self.show_error(exc, notify_user=notify_user)

    def _on_error(self, exc) -> None:  # unexpected: napari already shows the traceback once
        self._failed(exc, notify_user=False)

    def _on_done(self) -> None:
        self.worker = None
        self._update_button()

    def _on_paired(self, result, config: DataConfig, crop: int) -> None:
        if isinstance(result, Failed):
            self._failed(result.error)
            return
        dataset, train, val = result
        self.state.set_dataset(dataset, train, val, config, crop)
        self.report.value = format_dataset(dataset, train, val)
        self.show_message(f"paired: {len(train)} training pair(s)"
                          + (f", {len(val)} validation" if val is not None else "")
                          + f"; patch size {crop}. Ready for the Train widget.")
        self._show_examples(dataset, crop)

    def _show_examples(self, dataset, crop: int) -> None:
        """A few model-space patches (what the network sees) as two rows (A above B), right of the
        data: one 2-D mosaic layer per side, updated in place on every pairing."""
        n = int(self.examples.value)
        if n == 0 or len(dataset) == 0:
            return
        rng = np.random.default_rng(0)
        size = min(crop, *(min(p.shape) for p in dataset.pairs))
        gap = max(size // 8, 2)
        rows: dict[str, list] = {"a": [], "b": []}
        for k in range(n):
            pair = dataset.pairs[k % len(dataset)]
            h, w = pair.shape
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            for side in ("a", "b"):
                rows[side].append(model_to_display(getattr(pair, side)[:, y:y + size, x:x + size]))
        others = [ly for ly in self.viewer.layers if not is_helper(ly)]
        right = max((float(ly.extent.world[1][-1]) for ly in others), default=0.0)
        for k, (name, side) in enumerate(((EXAMPLE_A, "a"), (EXAMPLE_B, "b"))):
            mosaic = _mosaic(rows[side], gap)
            kw = {} if mosaic.ndim == 3 else {"contrast_limits": (-1.0, 1.0), "colormap": "gray"}
            # added one per event-loop turn (adding a layer is the slow part), updated in place after
            self.state.layers.put(name, mosaic, translate=(k * (size + gap), right + 2 * gap), **kw)


def _mosaic(patches: list, gap: int) -> np.ndarray:
    """Patches ``[h, w(, C)]`` side by side with ``gap`` columns of background between them."""
    h, w = patches[0].shape[:2]
    shape = (h, len(patches) * (w + gap) - gap) + patches[0].shape[2:]
    fill = -1.0 if patches[0].ndim == 2 else 0.0
    out = np.full(shape, fill, np.float32)
    for i, p in enumerate(patches):
        out[:, i * (w + gap):i * (w + gap) + w] = p
    return out
