"""The napari face fits the screen, never works on the GUI thread, and tells the truth (issue 14).

Each test drives the docks through ``make_napari_viewer`` as a user clicks them. Wall-clock
limits are not tested here: ``benchmarks/gui_stalls.py`` measures the event-loop gaps.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_pix2pix._napari._state import get_state  # noqa: E402

from test_napari_widgets import (PLUGIN, dock, load_model_file, nuclei_viewer, pair_now, paired,  # noqa: E402
                                 tiny_train_widget, wait_idle)

pytestmark = pytest.mark.gui
DOCKS = ("Pair data", "Train", "Discriminator", "Translate")


@pytest.fixture(scope="module")
def labels_to_image_model(tmp_path_factory) -> Path:
    """A tiny model whose source is a labels image (labels -> nuclei image)."""
    import torch

    from _helpers import nuclei_2d
    from napari_pix2pix.config import DataConfig, ModelConfig, TrainConfig
    from napari_pix2pix.data import from_arrays
    from napari_pix2pix.training import Trainer

    image, labels = nuclei_2d()
    dataset = from_arrays(labels[:128, :128], image[:128, :128], DataConfig(validation_fraction=0.0), names="labels")
    model = ModelConfig(generator="unet_32", in_channels=dataset.in_channels, out_channels=dataset.out_channels,
                        ngf=4, ndf=4)
    out = tmp_path_factory.mktemp("l2i") / "stain.safetensors"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(model, TrainConfig(steps=2, crop=32, preview_every=0, log_every=1), dataset, out=out).run()
    finally:
        torch.set_num_threads(threads)
    return out


# ------------------------------------------------------------------------------- 1. fits
def test_docks_scroll_and_fit_a_1366x768_window(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QScrollArea

    viewer = nuclei_viewer(make_napari_viewer)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    widgets = [dock(viewer, name) for name in DOCKS]
    for widget in widgets:
        qtbot.waitUntil(lambda w=widget: w.idle, timeout=60_000)
    qtbot.wait(50)
    for widget in widgets:
        assert isinstance(widget.scroll, QScrollArea) and widget.scroll.widget() is widget.body
        hint = widget.sizeHint()
        assert hint.width() <= 1366 and hint.height() <= 768, (type(widget).__name__, hint)
    assert window.minimumSizeHint().height() <= 768 and window.minimumSizeHint().width() <= 1366
    assert window.height() <= 768 and window.width() <= 1366
    # compact: the advanced options start collapsed
    train = widgets[1]
    assert not train.train_form.collapsible.isExpanded() and not train.model_form.collapsible.isExpanded()


def test_forms_come_from_the_schema():
    """Every option the napari face shows is a schema field, with its default, choices and
    range; a new field appears without touching the widget."""
    from napari_pix2pix._napari._form import OptionsForm, napari_options
    from napari_pix2pix.config import TileConfig, TrainConfig
    from napari_pix2pix.schema import option

    for cls in (TrainConfig, TileConfig):
        form = OptionsForm(cls)
        form.build_advanced()
        shown = {o.name: o for o in napari_options(cls) if o.name in form}
        assert shown and set(form.widgets) == set(shown)
        defaults = cls()
        for name, opt in shown.items():
            value = form.values()[name]
            assert value == getattr(defaults, name), (cls.__name__, name, value)
            if opt.choices is not None:
                assert list(form[name].choices)[:len(opt.choices)] == list(opt.choices)

    @dataclass
    class Future:
        colour_space: str = option("lab", help="colour space", choices=("lab", "rgb"), level="basic")
        threads: int = option(2, help="CPU threads", range=(1, 64), level="advanced")
        hidden: int = option(1, help="not shown in napari", faces=("cli",))

    form = OptionsForm(Future)
    assert set(form.widgets) == {"colour_space"}  # advanced ones are built when first opened
    assert "threads" in form and form.values()["threads"] == 2
    form.build_advanced()
    assert set(form.widgets) == {"colour_space", "threads"}
    assert form["colour_space"].choices == ("lab", "rgb") and form["colour_space"].tooltip == "colour space"
    assert (form["threads"].min, form["threads"].max, form["threads"].value) == (1, 64, 2)
    assert form["threads"] in form.advanced and form["colour_space"] in form.basic
    assert form.build() == Future()


# --------------------------------------------------------------------------- 2. workers
def test_widget_modules_do_not_import_torch():
    code = ("import sys; import napari_pix2pix._napari._train_widget, napari_pix2pix._napari._translate_widget, "
            "napari_pix2pix._napari._pair_widget, napari_pix2pix._napari._discriminator_widget; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_heavy_action_goes_through_a_worker(make_napari_viewer, qtbot, tmp_path, tiny_model_file):
    from napari.qt.threading import GeneratorWorker, WorkerBase

    viewer = nuclei_viewer(make_napari_viewer, size=128)
    # opening Train: receptive field and device probing are workers, the GUI returns at once
    train = dock(viewer, "Train")
    assert train.background and all(isinstance(w, WorkerBase) for w in train.background)
    assert train.rf_label.value == "receptive field: ..."
    wait_idle(qtbot, train)
    # pairing
    pair = dock(viewer, "Pair data")
    pair.layer_a.select("nuclei")
    pair.layer_b.select("nuclei labels")
    pair.crop.value = 32
    assert pair.pair() and isinstance(pair.worker, WorkerBase)
    assert get_state(viewer).train_dataset is None  # not yet: the worker builds it
    wait_idle(qtbot, pair)
    assert get_state(viewer).train_dataset is not None
    # loading a model
    translate = dock(viewer, "Translate")
    translate.model_path.value = str(tiny_model_file)
    assert isinstance(translate.loader, WorkerBase) and translate.model is None
    wait_idle(qtbot, translate)
    assert translate.model is not None
    # translating
    translate.input_layer.select("nuclei")
    assert translate.run() and isinstance(translate.worker, WorkerBase)
    wait_idle(qtbot, translate)
    # D map (the model file is loaded in the worker too)
    disc = dock(viewer, "Discriminator")
    disc.model_path.value = str(tiny_model_file)
    disc.input_layer.select("nuclei")
    assert disc.compute() and isinstance(disc.worker, WorkerBase) and not disc.maps
    wait_idle(qtbot, disc)
    assert disc.maps
    # training: a generator worker whose quit() stops after the current step
    train.steps.value = 3
    train.checkpoint_dir.value = str(tmp_path)
    for key, value in {"generator": "unet_32", "ngf": 4, "ndf": 4}.items():
        getattr(train, key).value = value
    assert train.start() and isinstance(train.worker, GeneratorWorker)
    wait_idle(qtbot, train)
    assert train.last_finished.step == 3


# ----------------------------------------------------------------------------- 3. truth
def test_model_info_refreshes_when_the_file_changes(make_napari_viewer, qtbot, tmp_path, tiny_model_file):
    from napari_pix2pix.model import Pix2PixModel, file_sha256

    path = tmp_path / "model.safetensors"
    path.write_bytes(tiny_model_file.read_bytes())
    viewer = make_napari_viewer()
    widget = dock(viewer, "Translate")
    load_model_file(qtbot, widget, path)
    old_sha = file_sha256(path)
    assert old_sha[:16] in widget.info.value and "trained 4 steps" in widget.info.value
    model = Pix2PixModel.load(path)
    model.checkpoint.step = 123  # the file is rewritten (e.g. a training saved again)
    model.save(path)
    assert file_sha256(path) != old_sha
    qtbot.waitUntil(lambda: "trained 123 steps" in widget.info.value, timeout=30_000)  # the 1-s file check
    assert file_sha256(path)[:16] in widget.info.value and old_sha[:16] not in widget.info.value


def test_failed_pairing_clears_the_dataset_and_disables_start(make_napari_viewer, qtbot, tmp_path):
    viewer = nuclei_viewer(make_napari_viewer, size=64)
    pair = paired(viewer, qtbot)
    train = dock(viewer, "Train")
    train.checkpoint_dir.value = str(tmp_path)
    assert train.start_button.enabled
    viewer.add_image(np.zeros((80, 64), np.float32), name="other size")
    pair.layer_b.select("other size")
    assert not pair_now(qtbot, pair)
    state = get_state(viewer)
    assert state.train_dataset is None and "size" in state.dataset_error
    assert not train.start_button.enabled and "last pairing failed" in train.start_button.tooltip
    assert not train.start() and "last pairing failed" in train.message.text()


def test_empty_or_missing_checkpoint_folder_is_refused(make_napari_viewer, qtbot, tmp_path):
    viewer = nuclei_viewer(make_napari_viewer, size=64)
    paired(viewer, qtbot)
    train = dock(viewer, "Train")
    assert not train.start() and train.message_level == "error"
    assert "no checkpoint folder" in train.message.text() and "Fix:" in train.message.text()
    train.checkpoint_dir.value = str(tmp_path / "missing")
    assert not train.start() and "does not exist" in train.message.text()
    assert not train.running
    wait_idle(qtbot, train)


def test_every_disabled_button_says_why(make_napari_viewer, qtbot):
    from magicgui.widgets import PushButton

    viewer = make_napari_viewer()
    widgets = [dock(viewer, name) for name in DOCKS]
    for widget in widgets:
        wait_idle(qtbot, widget)
        buttons = [w for w in vars(widget).values() if isinstance(w, PushButton)]
        assert buttons
        for button in buttons:
            if not button.enabled:
                assert button.tooltip, (type(widget).__name__, button.text)
    assert not widgets[1].start_button.enabled and "Pair data" in widgets[1].start_button.tooltip


def test_one_notification_per_failure(make_napari_viewer, qtbot):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.float32), name="a")
    viewer.add_image(np.zeros((80, 64), np.float32), name="b")
    pair = dock(viewer, "Pair data")
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    try:
        pair.layer_a.select("a")
        pair.layer_b.select("b")
        assert not pair_now(qtbot, pair)
    finally:
        notification_manager.notification_ready.disconnect(seen.append)
    assert len(seen) == 1


# ---------------------------------------------------------------------------- 4. layers
def test_outputs_get_unique_names_and_replacing_is_explicit(make_napari_viewer, qtbot, tiny_model_file):
    viewer = nuclei_viewer(make_napari_viewer, size=64)
    widget = dock(viewer, "Translate")
    load_model_file(qtbot, widget, tiny_model_file)
    widget.input_layer.select("nuclei")
    names = []
    for _ in range(2):
        assert widget.run()
        wait_idle(qtbot, widget)
        names.append(widget.last_layer.name)
    stem = tiny_model_file.stem
    assert names == [f"nuclei [{stem}]", f"nuclei [{stem}] 2"]
    n = len(viewer.layers)
    widget.replace.value = True
    assert widget.run()
    wait_idle(qtbot, widget)
    assert len(viewer.layers) == n and widget.last_layer.name == f"nuclei [{stem}] 2"


def test_helper_layers_are_hidden_from_combos_and_removed_in_one_click(make_napari_viewer, qtbot):
    viewer = nuclei_viewer(make_napari_viewer, size=64)
    pair = paired(viewer, qtbot)
    helpers = [ly.name for ly in viewer.layers if ly.name.startswith("pix2pix: ")]
    assert helpers == ["pix2pix: examples A", "pix2pix: examples B"]
    disc = dock(viewer, "Discriminator")
    for picker in (pair.layer_a, pair.layer_b, disc.input_layer, disc.target_layer):
        assert not any(name.startswith("pix2pix: ") for name in picker.layer_names)
        assert all(value is None or not value.name.startswith("pix2pix") for value in picker.choices)
    disc.clean_button.changed.emit(True)  # the user clicks "Remove helper layers"
    assert [ly.name for ly in viewer.layers] == ["nuclei", "nuclei labels"]


def test_label_source_models_take_labels(make_napari_viewer, qtbot, labels_to_image_model):
    viewer = nuclei_viewer(make_napari_viewer, size=64)
    widget = dock(viewer, "Translate")
    load_model_file(qtbot, widget, labels_to_image_model)
    # only the layers this model can take, and the defaults follow the model
    assert widget.input_layer.layer_names == ["nuclei labels"]
    assert widget.input_layer.value.name == "nuclei labels"
    assert widget.run()
    wait_idle(qtbot, widget)
    assert widget.last_layer.name == "nuclei labels [stain]" and widget.message_level != "error"
    # the function widget accepts a Labels layer as its input
    from napari_pix2pix._napari.functions import translate_layer

    data, meta, kind = translate_layer(viewer.layers["nuclei labels"], labels_to_image_model, tile=0)
    assert kind == "image" and data.shape == (64, 64)
    # the Pair dock follows the loaded model: labels as A, the image as B, its patch size
    pair = dock(viewer, "Pair data")
    assert pair.layer_a.value.name == "nuclei labels" and pair.layer_b.value.name == "nuclei"
    assert pair.crop.value == 32


# ------------------------------------------------------------------------- 5. progress, plot
def test_progress_and_loss_history_survive_resume(make_napari_viewer, qtbot, tmp_path):
    viewer = nuclei_viewer(make_napari_viewer, size=128)
    paired(viewer, qtbot, crop=32, validation=0.0)
    train = tiny_train_widget(viewer, qtbot, tmp_path, steps=6, ngf=4, ndf=4)
    assert train.start()
    qtbot.waitUntil(lambda: train.plot.count("G L1") >= 2, timeout=30_000)
    assert "steps/s" in train.progress_line.text or "step " in train.progress_line.text
    wait_idle(qtbot, train)
    assert train.plot.count("G L1") == 6 and set(train.plot.curves) >= {"G cGAN", "G L1", "D real", "D fake"}
    train.steps.value = 9
    train.resume_file.value = str(tmp_path / "model.safetensors")
    assert train.resume_button.enabled
    assert train.resume()
    wait_idle(qtbot, train)
    steps, _ = train.plot.series["G L1"]
    assert steps[0] == 1 and steps[-1] == 9 and len(steps) == 9  # the first 6 came from the checkpoint
    train.plot.log_scale.setChecked(False)
    train.plot.smoothing.setValue(0.0)
    assert list(train.plot.curves["G L1"].getData()[1]) == train.plot.series["G L1"][1]


def test_napari_docks_match_the_schema(make_napari_viewer, qtbot):
    """The schema-vs-faces drift check for the napari face: every option widget of the four docks
    (advanced sections opened) against the schema's default, choices and range; and every schema
    option meant for napari is reachable from some dock."""
    from magicgui.widgets import ComboBox

    from napari_pix2pix._napari._form import _FLOAT_MAX, _INT_MAX, OptionsForm
    from test_schema_faces import CLASSES, Exposed, compare_with_schema

    from napari_pix2pix.presets import PRESETS, preset_names

    viewer = make_napari_viewer()
    widgets = [dock(viewer, name) for name in DOCKS]
    for widget in widgets:
        wait_idle(qtbot, widget)
    train = widgets[DOCKS.index("Train")]
    # the Train dock opens with the device's preset (issue 15 item 7): the engine's names, and its
    # fields show the preset's values where it has one, the schema's default everywhere else
    assert tuple(train.preset.choices) == ("auto", *preset_names()) and train.preset.value == "auto"
    overrides = PRESETS[train.presets.applied].overrides
    exposed: dict = {}
    for widget in widgets:
        forms = [f for f in vars(widget).values() if isinstance(f, OptionsForm)]
        singles = [w for w in (getattr(widget, "crop", None), getattr(widget, "mode", None)) if w is not None]
        for form in forms:
            form.build_advanced()
        for w in [w for f in forms for w in f.widgets.values()] + singles:
            got = Exposed(default=w.value if not isinstance(w.value, str) or w.value else None)
            if hasattr(w, "__fspath__") or type(w).__name__ in ("FileEdit", "LineEdit"):
                got.default = None if str(w.value) in ("", ".") else w.value
            if isinstance(w, ComboBox):
                got.choices = tuple(w.choices)
            if hasattr(w, "min") and hasattr(w, "max") and not isinstance(w, ComboBox):
                top = None if w.max in (_INT_MAX, _FLOAT_MAX) else w.max
                got.range = (w.min, top)
            if widget is train and w.name in overrides:
                want = overrides[w.name]
                assert got.default == (pytest.approx(want) if isinstance(want, float) else want), w.name
                got.default = next(getattr(c(), w.name) for c in CLASSES if w.name in c.__dataclass_fields__)
            exposed.setdefault(w.name, got)
    fixed = {"in_channels", "out_channels", "channels_a", "channels_b", "a_is_labels", "b_is_labels"}
    problems = [p for p in compare_with_schema(exposed, CLASSES, "napari", complete=True)
                if p.split(":")[0] not in fixed]
    assert not problems, "\n".join(problems)


def test_a_collapsed_validation_output_is_said_once(make_napari_viewer, qtbot):
    """Issue 20: a validation output gone flat shows a warning with a Fix: in the Train dock (once per run)."""
    from napari_pix2pix.training import ValidationEvent

    viewer = make_napari_viewer()
    train = dock(viewer, "Train")
    wait_idle(qtbot, train)
    train._on_event(ValidationEvent(10, {"L1": 0.5, "PSNR": 12.0, "SSIM": 0.1, "Std ratio": 0.002}))
    text = train.message.text()
    assert "nearly constant" in text and "Fix:" in text and train.message_level == "warning"
    train.show_message("step 11")
    train._on_event(ValidationEvent(20, {"L1": 0.5, "PSNR": 12.0, "SSIM": 0.1, "Std ratio": 0.001}))
    assert train.message.text() == "step 11"  # said once
    train._on_event(ValidationEvent(30, {"L1": 0.1, "PSNR": 22.0, "SSIM": 0.6, "Std ratio": 0.9}))
    assert train.message.text() == "step 11"  # a healthy output says nothing


def test_a_threads_change_shows_in_the_train_dock(make_napari_viewer, qtbot):
    """threads=auto switching its thread count (a ThreadsEvent) is said in the dock's message line,
    and the step lines after it keep the new count."""
    from napari_pix2pix.training import StepEvent, ThreadsEvent

    viewer = make_napari_viewer()
    train = dock(viewer, "Train")
    wait_idle(qtbot, train)
    train._on_event(ThreadsEvent(5, 2, 1, "threads 2 -> 1 (auto: model 1.9 GFLOP/step, 2 cores, 1 busy)"))
    assert "threads 2 -> 1 (auto: model 1.9 GFLOP/step" in train.message.text()
    train._show_step(StepEvent(6, 10, {"G_L1": 1.0}, 2e-4, 0.1))
    assert train.message.text().startswith("step 6/10") and train.message.text().endswith("threads 1")


def test_a_new_run_asks_before_replacing_a_saved_model(make_napari_viewer, qtbot, tmp_path):
    """Issue 17 (napari's --overwrite): Start in a folder that holds model.safetensors asks; "No" keeps it."""
    viewer = nuclei_viewer(make_napari_viewer, size=64)
    paired(viewer, qtbot)
    train = dock(viewer, "Train")
    train.checkpoint_dir.value = str(tmp_path)
    saved = tmp_path / "model.safetensors"
    saved.write_bytes(b"an earlier model")
    asked = []
    train.confirm_replace = lambda path: asked.append(path) or False  # the user answers "No"
    assert not train.start() and asked == [saved] and not train.running
    assert saved.read_bytes() == b"an earlier model"
    assert "was kept" in train.message.text() and "Fix:" in train.message.text()


def test_a_typed_cuda_device_is_accepted_and_a_bad_one_is_said(make_napari_viewer, qtbot):
    """Issue 12 in the napari face: the device combo takes a typed ``cuda:N`` (the schema's
    pattern) and refuses anything else with a ``Fix:`` while the last good value stays."""
    from qtpy.QtCore import Qt

    viewer = make_napari_viewer()
    train = dock(viewer, "Train")
    wait_idle(qtbot, train)
    device = train.device
    line = device.native.lineEdit()
    assert line is not None  # editable
    line.selectAll()
    qtbot.keyClicks(line, "cuda:1")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert device.value == "cuda:1" and device.problem is None
    assert train.train_form.values()["device"] == "cuda:1"
    line.selectAll()
    qtbot.keyClicks(line, "gpu7")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert device.value == "cuda:1" and line.text() == "cuda:1"
    assert "gpu7" in device.problem and "cuda:N" in device.problem and "Fix:" in device.problem
    assert device.tooltip == device.problem
