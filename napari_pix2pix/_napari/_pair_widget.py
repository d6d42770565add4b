"""The "Pair data" widget: build the paired dataset the Train widget uses.

Sources: two layers, two folders, a folder of side-by-side AB images, or channels of one
layer. The engine validates and normalises (:mod:`napari_pix2pix.data`); this widget only
collects the options, shows the report and a few example patches, and stores the result in
the shared state.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import (CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, LineEdit, PushButton, SpinBox,
                              TextEdit)

from ..config import LABEL_ENCODING_CHOICES, NORM_MODE_CHOICES, DataConfig, NormConfig, TrainConfig
from ..errors import DatasetError, InputError, Pix2PixError
from ._colorize import colorize_from_layers, task_combo
from ._common import DockWidget, LayerPicker
from ._layers import error_text, is_rgb, layer_array, model_to_display, upsert_image

SOURCES = ("two layers", "two folders", "AB folder", "channels of one layer")
from ..config import DIRECTION_CHOICES as DIRECTIONS
EXAMPLE_A, EXAMPLE_B = "pix2pix examples A", "pix2pix examples B"


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

    :meth:`pair` builds the dataset (also bound to the "Pair" button); the result goes to the
    shared state (``state.train_dataset``/``state.val_dataset``/``state.crop``).
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        data, norm, train = DataConfig(), NormConfig(), TrainConfig()
        v = napari_viewer
        self.task = task_combo()  # issue 18: colorize pairs come from RGB layer A alone
        self.source = ComboBox(label="source", choices=SOURCES, value=SOURCES[0])
        self.layer_a = LayerPicker(v, "A (input)")
        self.layer_b = LayerPicker(v, "B (target)")
        self.folder_a = FileEdit(label="folder A", mode="d")
        self.folder_b = FileEdit(label="folder B", mode="d")
        self.ab_folder = FileEdit(label="AB folder", mode="d")
        self.direction = ComboBox(label="direction", choices=DIRECTIONS, value=data.direction)
        self.channel_layer = LayerPicker(v, "layer", kinds=("image",))
        self.channels_a = LineEdit(label="channels A", value="0")
        self.channels_b = LineEdit(label="channels B", value="1")
        self.channel_axis = SpinBox(label="channel axis", value=-1, min=-8, max=7)
        self.crop = SpinBox(label="patch size", value=train.crop, min=8, max=4096, step=8,
                            tooltip="side of the square training patches (TrainConfig.crop)")
        self.norm_a = ComboBox(label="normalise A", choices=NORM_MODE_CHOICES, value=norm.mode)
        self.norm_b = ComboBox(label="normalise B", choices=NORM_MODE_CHOICES, value=norm.mode)
        self.low = FloatSpinBox(label="low", value=norm.low, min=-1e9, max=1e9, step=0.5,
                                tooltip="percentile (mode percentile) or value (mode fixed)")
        self.high = FloatSpinBox(label="high", value=norm.high, min=-1e9, max=1e9, step=0.5)
        self.per_image = CheckBox(label="per image", value=norm.per_image)
        self.label_encoding = ComboBox(label="label encoding", choices=LABEL_ENCODING_CHOICES,
                                       value=norm.label_encoding)
        self.validation = FloatSpinBox(label="validation fraction", value=data.validation_fraction,
                                       min=0.0, max=0.9, step=0.05)
        self.examples = SpinBox(label="example patches", value=3, min=0, max=16)
        self.pair_button = PushButton(text="Pair")
        self.report = TextEdit(value="")
        self.report.native.setReadOnly(True)
        self.report.native.setMinimumHeight(120)

        self._groups = {
            SOURCES[0]: [self.layer_a, self.layer_b],
            SOURCES[1]: [self.folder_a, self.folder_b],
            SOURCES[2]: [self.ab_folder, self.direction],
            SOURCES[3]: [self.channel_layer, self.channels_a, self.channels_b, self.channel_axis],
        }
        self.form = Container(widgets=[
            self.task, self.source, *[w for ws in self._groups.values() for w in ws], self.crop, self.norm_a, self.norm_b,
            self.low, self.high, self.per_image, self.label_encoding, self.validation, self.examples])
        self.add(self.form)
        self.add(self.pair_button)
        self.add(self.message)
        self.add(self.report)
        self.layout().addStretch()
        self.source.changed.connect(self._show_source)
        self.pair_button.changed.connect(self.pair)
        self._show_source()
        self._preselect()

    # ------------------------------------------------------------------------------ ui
    def _show_source(self, *_):
        for name, widgets in self._groups.items():
            for w in widgets:
                w.visible = name == self.source.value

    def _preselect(self) -> None:
        """Pick a sensible A/B pair: an image for A, a labels (or second) layer for B."""
        layers = [ly for ly in self.layer_a.choices if ly is not None]
        if len(layers) >= 2:
            b = next((ly for ly in layers if type(ly).__name__ == "Labels"), layers[-1])
            a = next((ly for ly in layers if ly is not b), layers[0])
            self.layer_a.value, self.layer_b.value = a, b

    # ---------------------------------------------------------------------------- action
    def data_config(self) -> DataConfig:
        def norm(mode: str) -> NormConfig:
            kw = dict(mode=mode, per_image=self.per_image.value, label_encoding=self.label_encoding.value)
            if mode in ("percentile", "fixed"):
                kw.update(low=self.low.value, high=self.high.value)
            return NormConfig(**kw)

        extra = {}
        if self.source.value == SOURCES[3]:
            extra = {"channels_a": _channels(self.channels_a.value), "channels_b": _channels(self.channels_b.value)}
        return DataConfig(norm_a=norm(self.norm_a.value), norm_b=norm(self.norm_b.value),
                          direction=self.direction.value, validation_fraction=float(self.validation.value),
                          task=self.task.value, **extra)

    def build_dataset(self, config: DataConfig):
        """The engine call for the chosen source (may raise :class:`DatasetError`)."""
        from ..data import from_ab_folder, from_arrays, from_channels, from_folders

        kind = self.source.value
        if config.task == "colorize" and kind == SOURCES[0]:
            return colorize_from_layers([self.layer_a.value], config)
        if config.task == "colorize" and kind == SOURCES[1]:
            from ..tasks import colorize_from_paths

            return colorize_from_paths(self.folder_a.value, config)
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
            return from_arrays(layer_array(a), layer_array(b), config, rgb_a=is_rgb(a), rgb_b=is_rgb(b),
                               names=a.name)
        if kind == SOURCES[1]:
            return from_folders(self.folder_a.value, self.folder_b.value, config)
        if kind == SOURCES[2]:
            return from_ab_folder(self.ab_folder.value, config)
        layer = self.channel_layer.value
        if layer is None:
            raise DatasetError("choose a multichannel layer to split.", "open an image with channels first.")
        return from_channels(layer_array(layer), config=config, channel_axis=int(self.channel_axis.value),
                             name=layer.name)

    def pair(self, *_) -> bool:
        """Validate and build the dataset; True on success. Problems go to the report."""
        try:
            config = self.data_config()
            dataset = self.build_dataset(config)
            train, val = dataset.split(config.validation_fraction)
        except Pix2PixError as exc:
            report = getattr(exc, "report", None)
            self.report.value = report.format() if report is not None else error_text(exc)
            self.show_message(error_text(exc), "error")
            return False
        crop = int(self.crop.value)
        self.state.set_dataset(dataset, train, val, config, crop)
        self.report.value = format_dataset(dataset, train, val)
        self.show_message(f"paired: {len(train)} training pair(s)"
                          + (f", {len(val)} validation" if val is not None else "")
                          + f"; patch size {crop}. Ready for the Train widget.")
        self._show_examples(dataset, crop)
        return True

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
        others = [ly for ly in self.viewer.layers if ly.name not in (EXAMPLE_A, EXAMPLE_B)]
        right = max((float(ly.extent.world[1][-1]) for ly in others), default=0.0)
        for k, (name, side) in enumerate(((EXAMPLE_A, "a"), (EXAMPLE_B, "b"))):
            mosaic = _mosaic(rows[side], gap)
            kw = {} if mosaic.ndim == 3 else {"contrast_limits": (-1.0, 1.0), "colormap": "gray"}
            upsert_image(self.viewer, name, mosaic, translate=(k * (size + gap), right + 2 * gap), **kw)


def _mosaic(patches: list, gap: int) -> np.ndarray:
    """Patches ``[h, w(, C)]`` side by side with ``gap`` columns of background between them."""
    h, w = patches[0].shape[:2]
    shape = (h, len(patches) * (w + gap) - gap) + patches[0].shape[2:]
    fill = -1.0 if patches[0].ndim == 2 else 0.0
    out = np.full(shape, fill, np.float32)
    for i, p in enumerate(patches):
        out[:, i * (w + gap):i * (w + gap) + w] = p
    return out
