"""Presets in the napari Train dock (issue 15, item 7), driven as a user clicks them."""

from __future__ import annotations

import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_pix2pix._napari._state import get_state  # noqa: E402
from napari_pix2pix.config import AugmentConfig, ModelConfig, TrainConfig  # noqa: E402
from napari_pix2pix.presets import PRESETS, apply_preset, default_preset, preset_names  # noqa: E402

from test_napari_widgets import dock, nuclei_viewer, paired, tiny_train_widget, wait_idle  # noqa: E402

pytestmark = pytest.mark.gui


def expected(name: str) -> dict:
    """The preset's values for every field of the model, training and augmentation configs."""
    out = {}
    for cls in (AugmentConfig, TrainConfig, ModelConfig):
        config = apply_preset(name, cls())
        out.update({k: getattr(config, k) for k in PRESETS[name].overrides if hasattr(config, k)})
    return out


def test_the_preset_combo_offers_the_engines_presets_and_follows_the_device(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    train = dock(viewer, "Train")
    wait_idle(qtbot, train)
    assert tuple(train.preset.choices) == ("auto", *preset_names())
    assert train.preset.value == "auto"
    auto = default_preset("auto")
    assert train.presets.applied == auto and f"filled by preset {auto} (auto" in train.presets.status.value
    assert train.presets.details in train.presets.status.tooltip
    for name, value in expected(auto).items():
        if name != "crop":
            assert train.train_form.values().get(name, getattr(train, name).value) == value, name
    # auto follows the dock's device field (no torch needed for a named device)
    train.device.value = "cuda"
    assert train.presets.applied == default_preset("cuda") == "paper" and train.generator.value == "unet_256"
    train.device.value = "cpu"
    assert train.presets.applied == "quick-cpu" and train.generator.value == "unet_128"
    train.preset.value = "paper"
    train.device.value = "mps"  # a preset chosen by name stays
    assert train.presets.applied == "paper"


def test_choosing_paper_fills_the_fields_and_the_patch_size(make_napari_viewer, qtbot):
    viewer = nuclei_viewer(make_napari_viewer, size=128)
    pair = paired(viewer, qtbot, crop=32, validation=0.0)
    train = dock(viewer, "Train")
    wait_idle(qtbot, train)
    assert get_state(viewer).crop == 32  # opening the dock keeps the paired patch size
    train.preset.value = "paper"
    values = {**train.augment_form.values(), **train.train_form.values(), **train.model_form.values()}
    for name, value in expected("paper").items():
        if name == "crop":
            assert pair.crop.value == value and get_state(viewer).crop == value
        elif name in values:  # (beta1/beta2/unet_skips: not napari fields; their defaults are the paper's)
            assert values[name] == value, name
    assert train.generator.value == "unet_256" and train.ngf.value == 64
    assert "filled by preset paper" in train.presets.status.value
    assert "generator unet_256" in train.presets.status.tooltip and "patch size 256" in train.presets.details
    assert "patch size 256" in train.message.text()  # the data line says the new patch size
    train.ngf.value = 8  # the fields stay editable after a preset
    assert train.model_form.values()["ngf"] == 8
    train.preset.value = "quick-cpu"
    assert train.generator.value == "unet_128" and pair.crop.value == 128


def test_training_shows_an_estimate_before_it_trains(make_napari_viewer, qtbot, tmp_path):
    viewer = nuclei_viewer(make_napari_viewer, size=128)
    paired(viewer, qtbot, crop=32, validation=0.0)
    train = tiny_train_widget(viewer, qtbot, tmp_path, steps=3, ngf=4, ndf=4)
    seen = []
    started = train._on_started
    train._on_started = lambda event: (seen.append(train.presets.estimate), started(event))
    assert train.start()
    assert not train.preset.enabled  # locked while training, like the fields
    wait_idle(qtbot, train)
    assert train.preset.enabled
    assert seen and seen[0].startswith("estimated ") and "for 3 steps" in seen[0], seen
    assert "s/step on cpu" in train.presets.status.value
    assert train.last_finished is not None and train.last_finished.step == 3
    # Resume keeps the checkpoint's settings: no preset, no estimate
    train.steps.value = 4
    train.resume_file.value = str(tmp_path / "model.safetensors")
    assert train.resume()
    wait_idle(qtbot, train)
    assert "saved settings are kept" in train.presets.estimate
    assert train.last_finished.step == 4
