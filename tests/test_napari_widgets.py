"""The napari face driven as a user would, headless under Xvfb (pytest-xvfb).

Tiny models (unet_32, ngf/ndf 8, patches of 32) keep the whole file well under a minute and a
half on two CPU cores.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_pix2pix._napari import functions  # noqa: E402
from napari_pix2pix._napari._state import get_state  # noqa: E402

PLUGIN = "napari-pix2pix"
TINY = {"generator": "unet_32", "ngf": 8, "ndf": 8, "batch_size": 2, "preview_every": 5, "validate_every": 5}
pytestmark = pytest.mark.gui


# ----------------------------------------------------------------------------------- helpers
def dock(viewer, name):
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


def nuclei_viewer(make_napari_viewer, size: int | None = None):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "nuclei-2d")
    if size:
        for layer in viewer.layers:
            layer.data = np.ascontiguousarray(layer.data[:size, :size])
    return viewer


def pair_now(qtbot, pair) -> bool:
    """Press Pair and wait for its worker: True when a dataset was built."""
    if not pair.pair():
        return False
    wait_idle(qtbot, pair)
    return get_state(pair.viewer).train_dataset is not None


def paired(viewer, qtbot, crop=32, validation=0.1):
    pair = dock(viewer, "Pair data")
    pair.layer_a.select("nuclei")
    pair.layer_b.select("nuclei labels")
    pair.crop.value = crop
    pair.validation.value = validation
    assert pair_now(qtbot, pair), pair.message.text()
    return pair


def tiny_train_widget(viewer, qtbot, folder, steps=20, **extra):
    train = dock(viewer, "Train")
    for key, value in {**TINY, "steps": steps, "checkpoint_dir": str(folder), **extra}.items():
        getattr(train, key).value = value
    wait_idle(qtbot, train)
    return train


def load_model_file(qtbot, widget, path):
    widget.model_path.value = str(path)
    qtbot.waitUntil(lambda: widget.idle, timeout=60_000)


def wait_idle(qtbot, widget, timeout=180_000):
    qtbot.waitUntil(lambda: widget.idle, timeout=timeout)


# ------------------------------------------------------------------------- manifest, samples
def test_manifest_is_valid_and_importable():
    import npe2
    from npe2.manifest.utils import import_python_name

    path = Path(__file__).resolve().parents[1] / "napari.yaml"
    manifest = npe2.PluginManifest.from_file(path)
    assert manifest.name == PLUGIN
    contributions = manifest.contributions
    assert {w.display_name for w in contributions.widgets} >= {"Pair data", "Train", "Discriminator", "Translate"}
    assert {s.key for s in contributions.sample_data} == {"nuclei-2d", "nuclei-3d", "astronaut-edges",
                                                                 "colorize-photos", "colorize-ihc"}
    for command in contributions.commands:
        assert callable(import_python_name(command.python_name)), command.python_name
    from napari._app_model.constants._menus import is_menu_contributable

    assert "napari/layers/filter" in contributions.menus
    assert all(is_menu_contributable(menu) for menu in contributions.menus)
    # the installed plugin is the same manifest
    pm = npe2.PluginManager.instance()
    pm.discover()
    assert pm.get_manifest(PLUGIN).contributions.widgets == contributions.widgets


def test_sample_data_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "nuclei-2d")
    assert [ly.name for ly in viewer.layers] == ["nuclei", "nuclei labels"]
    assert viewer.layers["nuclei"].data.shape == viewer.layers["nuclei labels"].data.shape == (512, 512)
    assert type(viewer.layers["nuclei labels"]).__name__ == "Labels"
    viewer.open_sample(PLUGIN, "astronaut-edges")
    assert viewer.layers["astronaut"].rgb and viewer.layers["astronaut"].data.shape == (512, 512, 3)
    edges = viewer.layers["astronaut edges"].data
    assert edges.shape == (512, 512) and set(np.unique(edges)) == {0, 255}
    viewer.open_sample(PLUGIN, "nuclei-3d")
    assert viewer.layers["nuclei 3d"].data.ndim == 3
    assert viewer.layers["nuclei 3d"].data.shape == viewer.layers["nuclei 3d labels"].data.shape


# ----------------------------------------------------------------------------------- pairing
def test_pair_two_layers_shows_report_and_examples(make_napari_viewer, qtbot):
    viewer = nuclei_viewer(make_napari_viewer)
    pair = paired(viewer, qtbot, crop=64, validation=0.1)
    state = get_state(viewer)
    assert state.train_dataset is not None and state.val_dataset is not None
    assert state.crop == 64 and state.train_dataset.b_is_labels
    assert "no problems" in pair.report.value and "uint16" in pair.report.value
    examples = viewer.layers["pix2pix: examples A"]
    assert examples.data.shape == (64, 3 * 64 + 2 * 8)  # three 64-px patches, 8-px gaps
    assert examples.data.dtype == np.float32 and np.abs(examples.data).max() < 2  # model space, about [-1, 1]
    n_layers = len(viewer.layers)
    pair.examples.value = 2
    assert pair_now(qtbot, pair)
    assert len(viewer.layers) == n_layers  # updated in place, never piled up
    assert viewer.layers["pix2pix: examples B"].data.shape == (64, 2 * 64 + 8)


def test_pair_folders_ab_folder_channels_and_stacks(make_napari_viewer, qtbot, tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    for d in ("a", "b", "ab"):
        (tmp_path / d).mkdir()
    for name in ("one", "two"):
        a = rng.integers(0, 255, (48, 40), dtype=np.uint8)
        b = (255 - a).astype(np.uint8)
        tifffile.imwrite(tmp_path / "a" / f"{name}.tif", a)
        tifffile.imwrite(tmp_path / "b" / f"{name}.tif", b)
        tifffile.imwrite(tmp_path / "ab" / f"{name}.tif", np.concatenate([a, b], axis=1))
    viewer = make_napari_viewer()
    pair = dock(viewer, "Pair data")
    pair.crop.value = 32
    pair.validation.value = 0.0
    pair.source.value = "two folders"
    assert pair.layer_a.native.isHidden() and not pair.folder_a.native.isHidden()  # the chosen source only
    pair.folder_a.value, pair.folder_b.value = tmp_path / "a", tmp_path / "b"
    assert pair_now(qtbot, pair), pair.message.text()
    assert len(get_state(viewer).train_dataset) == 2 and "2 training pair(s)" in pair.report.value
    pair.source.value = "AB folder"
    pair.ab_folder.value = tmp_path / "ab"
    assert pair_now(qtbot, pair), pair.message.text()
    assert get_state(viewer).train_dataset.pairs[0].a.shape == (1, 48, 40)
    two_channel = np.stack([rng.random((48, 48)), rng.random((48, 48))], axis=-1).astype(np.float32)
    viewer.add_image(two_channel, name="two channels")
    pair.source.value = "channels of one layer"
    pair.channel_layer.select("two channels")
    pair.channels_a.value, pair.channels_b.value = "0", "1"
    assert pair_now(qtbot, pair), pair.message.text()
    assert get_state(viewer).train_dataset.in_channels == 1
    viewer.open_sample(PLUGIN, "nuclei-3d")
    pair.source.value = "two layers"
    pair.layer_a.select("nuclei 3d")
    pair.layer_b.select("nuclei 3d labels")
    assert pair_now(qtbot, pair), pair.message.text()
    assert len(get_state(viewer).dataset) == viewer.layers["nuclei 3d"].data.shape[0]  # one pair per slice


def test_pair_bad_inputs_give_messages(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    pair = dock(viewer, "Pair data")
    assert not pair.pair()  # no layers
    assert pair.message_level == "error" and "two layers" in pair.message.text()
    viewer.add_image(np.random.rand(64, 64).astype(np.float32), name="small")
    viewer.add_image(np.random.rand(80, 64).astype(np.float32), name="other")
    pair.layer_a.select("small")
    pair.layer_b.select("other")
    assert not pair_now(qtbot, pair)  # different shapes
    assert "size mismatch" in pair.report.value and pair.message_level == "error"
    pair.source.value = "channels of one layer"
    pair.channel_layer.select("small")
    assert not pair_now(qtbot, pair)  # a 2-D layer has no channels to split
    assert "channel" in pair.message.text()
    pair.source.value = "two folders"
    assert not pair_now(qtbot, pair)
    assert pair.message_level == "error"
    assert get_state(viewer).train_dataset is None


# ----------------------------------------------------------------------------------- training
def test_train_updates_plot_previews_and_maps(make_napari_viewer, qtbot, tmp_path):
    viewer = nuclei_viewer(make_napari_viewer)
    paired(viewer, qtbot, crop=32, validation=0.1)
    train = tiny_train_widget(viewer, qtbot, tmp_path, steps=20)
    disc = dock(viewer, "Discriminator")
    disc.follow.value = True
    assert "70 x 70" in train.rf_label.value  # patch D with 3 layers: the paper's 70x70 (worked out in a worker)
    train.discriminator_layers.value = 1
    wait_idle(qtbot, train)
    assert "16 x 16" in train.rf_label.value
    train.discriminator_layers.value = 3
    assert train.start()
    assert not train.start()  # pressing Train twice
    assert "already running" in train.message.text()
    wait_idle(qtbot, train)
    assert train.last_finished is not None and train.last_finished.step == 20
    assert not train.last_finished.stopped
    assert train.plot.count("G_GAN") == 20 and train.plot.count("D_fake") == 20
    assert train.plot.count("val SSIM") == 4 and train.plot.count("val PSNR") == 4
    previews = [ly for ly in viewer.layers if ly.name.startswith("pix2pix: preview")]
    assert sorted(ly.name for ly in previews) == sorted(
        ["pix2pix: preview input", "pix2pix: preview fake", "pix2pix: preview target",
         "pix2pix: preview input D real", "pix2pix: preview input D fake"])  # once each, updated in place
    assert viewer.layers["pix2pix: preview fake"].data.shape == (32, 32)
    assert get_state(viewer).last_preview.step == 20
    ssim, err = viewer.layers["pix2pix: quality SSIM"], viewer.layers["pix2pix: quality |error|"]
    ev = get_state(viewer).last_preview
    assert ssim.data.shape == err.data.shape == (32, 32)  # the Quality view, updated in place
    assert np.allclose(err.data, ev.error) and np.allclose(err.data, np.abs(ev.fake - ev.target).mean(0) / 2, atol=1e-6)
    assert ssim.data.max() <= 1.0 + 1e-6 and ssim.data.min() < 1.0
    dmap = viewer.layers["pix2pix: preview input D fake"]
    assert dmap.data.shape == get_state(viewer).geometry.map_size(32, 32)
    assert get_state(viewer).model is not None and train.progress is None
    assert not train.stop()  # Stop with nothing running
    assert "nothing to stop" in train.message.text()


def test_stop_save_and_resume(make_napari_viewer, qtbot, tmp_path):
    viewer = nuclei_viewer(make_napari_viewer, size=128)
    paired(viewer, qtbot, crop=32, validation=0.0)
    train = tiny_train_widget(viewer, qtbot, tmp_path, steps=100_000)
    assert train.start()
    qtbot.waitUntil(lambda: train.plot.count("G_L1") >= 3, timeout=30_000)
    # the Discriminator can judge with the model training now (copied between two steps)
    disc = dock(viewer, "Discriminator")
    disc.model_source.value = "current training"
    disc.input_layer.select("nuclei")
    disc.target_layer.select("nuclei labels")
    assert disc.compute()
    wait_idle(qtbot, disc)
    assert "pix2pix: nuclei D real" in viewer.layers
    assert disc.maps["fake"].logits.shape == viewer.layers["pix2pix: nuclei D fake"].data.shape
    assert train.running
    assert train.stop()
    wait_idle(qtbot, train)
    finished = train.last_finished
    assert finished.stopped and 3 <= finished.step < 100_000
    saved = tmp_path / "model.safetensors"
    assert saved.is_file() and str(saved) in train.saved
    assert get_state(viewer).model_path == str(saved)
    # resume from the saved file for five more steps
    train.steps.value = finished.step + 5
    train.resume_file.value = str(saved)
    assert train.resume()
    wait_idle(qtbot, train)
    assert train.last_finished.step == finished.step + 5 and not train.last_finished.stopped
    # bad resume file
    train.resume_file.value = str(tmp_path / "missing.safetensors")
    assert not train.resume() and train.message_level == "error"


def test_train_errors_are_messages(make_napari_viewer, qtbot, tmp_path):
    viewer = nuclei_viewer(make_napari_viewer, size=128)
    train = tiny_train_widget(viewer, qtbot, tmp_path, steps=5)
    assert not train.start()  # nothing paired yet
    assert "Pair data" in train.message.text()
    paired(viewer, qtbot, crop=32, validation=0.0)
    train.generator.value = "unet_64"  # crop 32 is not a multiple of 64
    assert train.start()  # the trainer is built in the worker: the error comes back as a message
    wait_idle(qtbot, train)
    assert train.message_level == "error" and "multiple of 64" in train.message.text()
    assert train.last_finished is None


def test_closing_stops_training(make_napari_viewer, qtbot, tmp_path):
    """napari's public route: the worker's quit() (activity panel, window closing) stops the
    training after the current step; closing the window or the dock does the same."""
    viewer = nuclei_viewer(make_napari_viewer, size=128)
    paired(viewer, qtbot, crop=32, validation=0.0)
    train = tiny_train_widget(viewer, qtbot, tmp_path, steps=100_000)
    assert train.start()
    qtbot.waitUntil(lambda: train.plot.count("G_L1") >= 2, timeout=30_000)
    control = train.control
    train.worker.quit()
    wait_idle(qtbot, train)
    assert control.done.is_set() and control.trainer._stop and train.last_finished.stopped
    assert (tmp_path / "model.safetensors").is_file()  # stopped cleanly, so it saved
    # closing the dock widget (napari's x button) while training
    asked = []
    train.confirm_replace = lambda path: asked.append(path) or True  # the user answers "Yes"
    assert train.start() and asked == [tmp_path / "model.safetensors"]
    qtbot.waitUntil(lambda: train.plot.count("G_L1") >= 2, timeout=30_000)
    control = train.control
    viewer.window.remove_dock_widget(train)
    assert control.done.is_set() and not train.running


# --------------------------------------------------------------------------------- translate
def test_translate_widget_adds_layer_with_metadata(make_napari_viewer, qtbot, tiny_model_file):
    from napari_pix2pix.model import file_sha256

    viewer = nuclei_viewer(make_napari_viewer, size=96)
    viewer.layers["nuclei"].scale = (0.5, 0.25)
    viewer.layers["nuclei"].translate = (10.0, -4.0)
    viewer.layers["nuclei"].units = ("um", "um")
    widget = dock(viewer, "Translate")
    load_model_file(qtbot, widget, tiny_model_file)
    assert "unet_32" in widget.info.value and "1 -> 1" in widget.info.value
    widget.input_layer.select("nuclei")
    widget.tile.value, widget.overlap.value = 64, 8
    assert widget.run()
    wait_idle(qtbot, widget)
    out = widget.last_layer
    assert out is not None and out.name == f"nuclei [{tiny_model_file.stem}]"
    assert out.data.shape == (96, 96)
    np.testing.assert_allclose(out.scale, (0.5, 0.25))
    np.testing.assert_allclose(out.translate, (10.0, -4.0))
    assert [str(u) for u in out.units] == ["micrometer", "micrometer"]
    meta = out.metadata["pix2pix"]
    assert meta["model_file"] == str(tiny_model_file) and meta["model_sha256"] == file_sha256(tiny_model_file)
    assert (meta["tile"], meta["overlap"], meta["mode"]) == (64, 8, "eval")
    # a stack: translated slice by slice, and the result feeds other widgets (it is a layer)
    viewer.add_image(np.stack([viewer.layers["nuclei"].data] * 3), name="stack")
    widget.input_layer.select("stack")
    assert widget.run()
    wait_idle(qtbot, widget)
    assert widget.last_layer.data.shape == (3, 96, 96)
    assert widget.last_layer in viewer.layers


def test_translate_bad_inputs(make_napari_viewer, qtbot, tmp_path, tiny_model_file, monkeypatch):
    viewer = make_napari_viewer()
    widget = dock(viewer, "Translate")
    assert not widget.run()  # no layers
    assert widget.message_level == "error" and "no input layer" in widget.message.text()
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a model")
    load_model_file(qtbot, widget, junk)  # a non-model file
    assert widget.message_level == "error" and widget.model is None
    assert not widget.run_button.enabled and "could not be loaded" in widget.run_button.tooltip
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    load_model_file(qtbot, widget, text)
    assert widget.message_level == "error"
    load_model_file(qtbot, widget, tiny_model_file)
    assert widget.model is not None
    viewer.open_sample(PLUGIN, "astronaut-edges")
    # RGB into a 1-channel model: not offered at all
    assert "astronaut" not in widget.input_layer.layer_names and "astronaut edges" in widget.input_layer.layer_names
    # out of memory on a huge untiled request: the engine retries, then advises to tile
    from napari_pix2pix import predict

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 40 GiB")

    monkeypatch.setattr(predict, "run_tiles", oom)  # every translation goes through the Predictor
    widget.input_layer.select("astronaut edges")
    widget.tile.value = 0
    assert widget.run()
    wait_idle(qtbot, widget)
    assert widget.message_level == "error"
    assert "out of memory" in widget.message.text() and "tile" in widget.message.text()
    assert len([ly for ly in viewer.layers if "[" in ly.name]) == 0


def test_function_widgets_chain_through_napari(make_napari_viewer, tiny_model_file):
    """Function widgets: unique output names, never a silent replacement; labels inputs taken."""
    viewer = nuclei_viewer(make_napari_viewer, size=64)
    data, meta, kind = functions.translate_layer(viewer.layers["nuclei"], tiny_model_file, tile=32, overlap=4)
    assert data.shape == (64, 64) and kind in ("image", "labels")
    assert meta["metadata"]["pix2pix"]["tile"] == 32
    # the autogenerated function widget: napari adds the returned layer itself
    _dock, fw = viewer.window.add_plugin_dock_widget(PLUGIN, "Translate layer (function)")
    fw.image.value = viewer.layers["nuclei"]
    fw.model_path.value = tiny_model_file
    fw.tile.value = 64
    fw.overlap.value = 8
    n = len(viewer.layers)
    fw()
    assert len(viewer.layers) == n + 1
    added = viewer.layers[-1]
    assert added.name == f"nuclei [{tiny_model_file.stem}]" and added.metadata["pix2pix"]["tile"] == 64
    fw()  # again: a second layer, not a silent replacement
    assert len(viewer.layers) == n + 2 and viewer.layers[-1].name == f"nuclei [{tiny_model_file.stem}] 2"
    # a Labels layer is a valid input of the function widget (label -> image models)
    assert viewer.layers["nuclei labels"] in fw.image.choices
    assert not any(ly.name.startswith("pix2pix: ") for ly in fw.image.choices)
    # ... and the result is an input for the next function widget
    maps = functions.discriminator_map_layer(viewer.layers["nuclei"], None, tiny_model_file)
    assert [m[1]["name"] for m in maps] == ["pix2pix: nuclei D fake"]


# ----------------------------------------------------------------------------- discriminator
def test_discriminator_maps_placement_and_click(make_napari_viewer, qtbot, tiny_model_file):
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.models import geometry

    viewer = nuclei_viewer(make_napari_viewer, size=128)
    image = viewer.layers["nuclei"]
    image.scale, image.translate = (2.0, 2.0), (100.0, 50.0)
    viewer.layers["nuclei labels"].scale = (2.0, 2.0)
    viewer.layers["nuclei labels"].translate = (100.0, 50.0)
    widget = dock(viewer, "Discriminator")
    widget.model_path.value = str(tiny_model_file)
    widget.input_layer.select("nuclei")
    widget.target_layer.select("nuclei labels")
    assert widget.compute()
    wait_idle(qtbot, widget)
    real, fake = viewer.layers["pix2pix: nuclei D real"], viewer.layers["pix2pix: nuclei D fake"]
    geo = geometry(Pix2PixModel.load(tiny_model_file).discriminator)
    assert real.data.shape == fake.data.shape == geo.map_size(128, 128)
    np.testing.assert_allclose(fake.scale, (2.0 * geo.jump, 2.0 * geo.jump))
    centre = geo.start + (geo.rf - 1) / 2
    np.testing.assert_allclose(fake.translate, (100 + 2 * centre, 50 + 2 * centre))
    assert fake.colormap.name == "PiYG"
    lo, hi = fake.contrast_limits
    assert lo == pytest.approx(-hi) and hi > 0
    assert "judged real" in widget.stats.value and "real pair" in widget.stats.value
    # cell (2, 3): its centre in world coordinates, then its receptive field on the image
    position = (100 + 2 * (centre + 2 * geo.jump), 50 + 2 * (centre + 3 * geo.jump))

    class Click:
        type = "mouse_press"

    Click.position = position
    widget.on_map_click(fake, Click())
    shapes = viewer.layers["pix2pix: receptive field"]
    assert len(shapes.data) == 1 and shapes.shape_type == ["rectangle"]
    r0, c0, r1, c1 = widget.maps["fake"].cell_box(2, 3)
    corners = shapes.data[0]
    np.testing.assert_allclose(corners.min(0), (100 + 2 * (r0 - 0.5), 50 + 2 * (c0 - 0.5)))
    np.testing.assert_allclose(corners.max(0), (100 + 2 * (r1 + 0.5), 50 + 2 * (c1 + 0.5)))
    widget.select_cell((100 + 2 * centre, 50 + 2 * centre))  # another cell: same layer, updated
    assert len(viewer.layers["pix2pix: receptive field"].data) == 1
    assert widget.select_cell((-1e6, -1e6)) is None
    # with the generated output only the fake map is computed (a real choice, no "-----" placeholder)
    assert widget.target_layer.choices[0] is None and len(widget.target_layer.choices) == 3
    widget.target_layer.value = None
    assert widget.compute()
    wait_idle(qtbot, widget)
    assert widget.maps["real"] is None and "fake pair" in widget.stats.value


def test_discriminator_bad_inputs(make_napari_viewer, qtbot, tiny_model_file):
    viewer = make_napari_viewer()
    widget = dock(viewer, "Discriminator")
    assert not widget.compute()  # no layers
    assert widget.message_level == "error"
    viewer.add_image(np.zeros((64, 64), np.uint8), name="a")
    viewer.add_image(np.zeros((48, 64), np.uint8), name="b")
    widget.input_layer.select("a")
    assert not widget.compute()  # no model
    assert "model" in widget.message.text()
    widget.model_path.value = str(tiny_model_file)
    widget.target_layer.select("b")
    assert not widget.compute()  # different sizes (checked before the worker loads the model)
    assert "differ in size" in widget.message.text()
    widget.model_source.value = "current training"
    assert not widget.compute() and "no model from training" in widget.message.text()


# ------------------------------------------------------------------------------------- demo
def test_demo_viewer_docks_and_prefills(make_napari_viewer, monkeypatch):
    from napari_pix2pix._napari import demo

    monkeypatch.setattr(napari, "Viewer", lambda **kw: make_napari_viewer())
    viewer = demo.open_demo_viewer("nuclei-2d", show=False)
    docked = set(viewer.window.dock_widgets)
    assert all(any(name in key for key in docked) for name in demo.WIDGETS)
    train = next(w for k, w in viewer.window.dock_widgets.items() if "Train" in k)
    assert train.generator.value == demo.DEMO_SETTINGS["generator"]
    pair = next(w for k, w in viewer.window.dock_widgets.items() if "Pair data" in k)
    assert pair.layer_a.value.name == "nuclei labels" and pair.crop.value == 64


def test_cli_demo_hands_over_to_the_viewer(make_napari_viewer, tmp_path, monkeypatch):
    """The README's demo command: headless training, then napari with the result and the model."""
    import napari

    from napari_pix2pix._napari import demo as napari_demo
    from napari_pix2pix.demo import run_demo

    summary = run_demo(tmp_path, seconds=1)
    assert (tmp_path / "demo.png").is_file() and summary["translated"].shape == (512, 512)
    monkeypatch.setattr(napari, "Viewer", lambda *a, **k: make_napari_viewer())
    viewer, widgets = napari_demo.show_demo(summary, show=False, run=False)
    assert "translated (demo model)" in viewer.layers
    assert set(widgets) == {"Pair data", "Train", "Discriminator", "Translate"}
    assert str(widgets["Translate"].model_path.value) == summary["model_path"]


def test_quality_maps_function_widget(make_napari_viewer, tiny_model_file):
    """The Quality view for any pair of layers: SSIM and error maps placed over the input."""
    from napari_pix2pix._napari.functions import quality_maps_layer
    from napari_pix2pix.samples import nuclei_2d

    viewer = make_napari_viewer()
    image, labels = nuclei_2d()
    img = viewer.add_image(image[:96, :128], name="img", scale=(0.5, 0.5), translate=(10, 20))
    tgt = viewer.add_image(labels[:96, :128], name="tgt")
    layers = quality_maps_layer(img, tgt, model_path=tiny_model_file, tile=0)
    (ssim, ssim_meta, kind), (err, err_meta, _) = layers
    assert kind == "image" and ssim.shape == err.shape == (96, 128)
    assert ssim_meta["scale"] == (0.5, 0.5) and ssim_meta["translate"] == (10.0, 20.0)
    assert 0 <= err.min() and err.max() <= 1 and ssim.max() <= 1 + 1e-6
    with pytest.raises(Exception, match="Fix:"):
        quality_maps_layer(img, viewer.add_image(labels[:50, :50]), model_path=tiny_model_file, tile=0)


def _node_pack():
    import sys

    from test_nodes import PACK, load_pack

    name = "custom_nodes.pix2pix_cross_face"
    if name in sys.modules:
        return sys.modules[name]
    return load_pack(name, search=[str(PACK)])


def _run_node(cls, **inputs):
    kwargs = {}
    for section in ("required", "optional"):
        for key, spec in cls.INPUT_TYPES().get(section, {}).items():
            if len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]:
                kwargs[key] = spec[1]["default"]
    kwargs.update(inputs)
    result = getattr(cls(), cls.FUNCTION)(**kwargs)
    return result["result"] if isinstance(result, dict) else result


def test_models_cross_between_graph_nodes_and_napari(make_napari_viewer, qtbot, tmp_path, monkeypatch,
                                                     tiny_model_file):
    """A model trained and saved by the graph nodes opens in the Translate widget, and a model
    written by the napari face (or the engine) loads in the Load node."""
    import shutil

    import torch

    monkeypatch.setenv("NAPARI_PIX2PIX_MODEL_DIR", str(tmp_path))
    nodes = _node_pack().NODE_CLASS_MAPPINGS
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.random((2, 32, 32, 3), dtype=np.float32))
    dataset, _ = _run_node(nodes["Pix2PixPairImages"], images_a=a, images_b=1 - a)
    model, _curve, *_ = _run_node(nodes["Pix2PixTrain"], dataset=dataset, steps=2, generator="unet_32", ngf=8, ndf=8,
                              discriminator_layers=2, crop=32, batch_size=2, device="cpu")
    (saved,) = _run_node(nodes["Pix2PixSaveModel"], model=model, name="from_nodes")
    viewer = make_napari_viewer()
    viewer.add_image(rng.random((40, 48, 3), dtype=np.float32), name="rgb", rgb=True)
    widget = dock(viewer, "Translate")
    load_model_file(qtbot, widget, saved)
    assert "unet_32" in widget.info.value and "3 -> 3" in widget.info.value
    widget.input_layer.select("rgb")
    assert widget.run()
    wait_idle(qtbot, widget)
    assert widget.last_layer.data.shape == (40, 48, 3)
    shutil.copy(tiny_model_file, tmp_path / "from_napari.safetensors")
    loaded, _info = _run_node(nodes["Pix2PixLoadModel"], model_name="from_napari.safetensors")
    assert loaded.config.generator == "unet_32" and loaded.step == 4
