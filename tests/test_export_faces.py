"""Export from the other faces: the ComfyUI Export node (safe names in the output folder) and
the napari Export button's pieces (format from the dialog, export in a worker)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="the [onnx] extra is not installed")

from napari_pix2pix.errors import ConfigError, Pix2PixError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def export_node():
    from test_nodes import PACK, load_pack

    pack = load_pack("custom_nodes.napari_pix2pix_export_test", search=[str(PACK)], comfy_core=True)
    assert "Pix2PixExportModel" in pack.NODE_CLASS_MAPPINGS and "Pix2PixTranslate" in pack.NODE_CLASS_MAPPINGS
    return pack.NODE_CLASS_MAPPINGS["Pix2PixExportModel"]


def test_export_node_writes_safe_names_into_the_output_folder(export_node, tiny_model_file, tmp_path,
                                                                monkeypatch):
    import torch

    from napari_pix2pix.config import EXPORT_FORMATS
    from napari_pix2pix.model import Pix2PixModel

    monkeypatch.delitem(sys.modules, "folder_paths", raising=False)
    monkeypatch.setenv("NAPARI_PIX2PIX_OUTPUT_DIR", str(tmp_path))
    fmt = export_node.INPUT_TYPES()["required"]["format"]
    assert fmt[0] == list(EXPORT_FORMATS) and fmt[1]["default"] == "onnx"  # from the schema
    model = Pix2PixModel.load(tiny_model_file)
    with torch.inference_mode():  # as ComfyUI runs nodes
        first = export_node().export(model, name="exp/tiny", format="onnx")["result"][0]
        second = export_node().export(model, name="exp/tiny.onnx", format="onnx")["result"][0]
    root = tmp_path / "pix2pix" / "exp"
    assert Path(first) == root / "tiny.onnx" and Path(second) == root / "tiny_00001.onnx"  # never overwritten
    for bad in ("../escape", "/abs/path", "a/../../b"):
        with pytest.raises(ConfigError):
            export_node().export(model, name=bad, format="onnx")
    with pytest.raises(Pix2PixError):
        export_node().export(model, name="x", format="tflite")
    assert sorted(p.name for p in root.iterdir()) == ["tiny.onnx", "tiny_00001.onnx"]


def test_napari_export_format_from_dialog_choice():
    pytest.importorskip("magicgui")
    from napari_pix2pix._napari._export import FILTERS, format_for

    assert format_for("/x/m.onnx") == (Path("/x/m.onnx"), "onnx")
    assert format_for("/x/m.ZIP") == (Path("/x/m.ZIP"), "bioimageio")
    assert format_for("/x/m", FILTERS["bioimageio"]) == (Path("/x/m.zip"), "bioimageio")
    assert format_for("/x/m", "") == (Path("/x/m.onnx"), "onnx")


@pytest.mark.gui
def test_napari_export_runs_in_a_worker(qtbot, tiny_model_file, tmp_path):
    pytest.importorskip("napari")
    from napari_pix2pix._napari._export import start_export

    class Dock:
        def __init__(self):
            self.messages, self.errors = [], []

        def show_message(self, text, level="info", notify_user=False):
            self.messages.append(text)

        def show_error(self, exc):
            self.errors.append(str(exc))

    dock, done = Dock(), []
    start_export(dock, str(tiny_model_file), tmp_path / "m.onnx", "onnx", on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=120_000)
    assert (tmp_path / "m.onnx").is_file() and "exported" in dock.messages[-1] and not dock.errors
    done.clear()
    (tmp_path / "a-file").write_text("")
    start_export(dock, str(tiny_model_file), tmp_path / "a-file" / "m.onnx", "onnx", on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=120_000)
    assert dock.errors and "Fix:" in dock.errors[-1]


@pytest.mark.gui
def test_translate_dock_export_button_writes_onnx(make_napari_viewer, qtbot, tiny_model_file, tmp_path,
                                                  monkeypatch):
    """A user loads a model in the Translate dock, clicks "Export model…" and picks a .onnx name."""
    pytest.importorskip("onnxruntime")
    from napari_pix2pix._napari import _export
    from test_napari_widgets import PLUGIN, wait_idle

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Translate")
    widget.model_path.value = str(tiny_model_file)
    wait_idle(qtbot, widget)
    out = tmp_path / "exported.onnx"
    monkeypatch.setattr(_export, "ask_export_path", lambda parent, start: (out, "onnx"))
    widget.export_button.clicked.emit()
    qtbot.waitUntil(lambda: out.exists() and widget.message.text().startswith("exported "), timeout=120_000)
    import onnx

    assert onnx.load(str(out)).graph.input[0].name
