"""Export from napari: an "Export model…" button for a dock (Translate or Train).

The napari helper places it: ``add_export_button(dock, get_model)`` appends a button to a
:class:`~napari_pix2pix._napari._common.DockWidget`; ``get_model()`` returns what to export (a
model file path or a loaded :class:`~napari_pix2pix.model.Pix2PixModel`, or None). Pressing it
opens a save dialog (``.onnx`` -> ONNX, ``.zip`` -> bioimage.io package) and runs the engine's
:func:`~napari_pix2pix.export.export_model` in a worker thread; the dock shows the result (with
the measured parity) or the error's Problem/Fix text. No export logic lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from magicgui.widgets import PushButton

from ..config import EXPORT_FORMATS
from ..errors import InputError

FILTERS = {"onnx": "ONNX model (*.onnx)", "bioimageio": "bioimage.io model package (*.zip)"}
SUFFIXES = {"onnx": ".onnx", "bioimageio": ".zip"}


def format_for(path: str | Path, chosen_filter: str = "") -> tuple[Path, str]:
    """``(path with suffix, format)`` for a file chosen in the dialog: by the suffix, else by
    the chosen filter (whose suffix is then added)."""
    path = Path(path)
    for fmt, suffix in SUFFIXES.items():
        if path.suffix.lower() == suffix:
            return path, fmt
    fmt = next((f for f, text in FILTERS.items() if text == chosen_filter), EXPORT_FORMATS[0])
    return path.with_name(path.name + SUFFIXES[fmt]), fmt


def ask_export_path(parent=None, start: str = "") -> tuple[Path, str] | None:
    """The save dialog; None when cancelled."""
    from qtpy.QtWidgets import QFileDialog

    filters = ";;".join(FILTERS[f] for f in EXPORT_FORMATS)
    path, chosen = QFileDialog.getSaveFileName(parent, "Export model", start, filters)
    return format_for(path, chosen) if path else None


def start_export(dock, model, path: str | Path, format: str, on_done: Callable | None = None):
    """Export ``model`` to ``path`` in a worker; messages go to ``dock``. Returns the worker."""
    from ..export import export_model
    from ._common import when_alive
    from ._workers import Failed, call

    dock.show_message(f"exporting to {Path(path).name} ...")
    worker = call(export_model, model, path, format)

    def returned(result):
        if isinstance(result, Failed):
            dock.show_error(result.error)
        else:
            parity = ", ".join(f"{k} {v:.2g}" for k, v in (result.parity or {}).items())
            dock.show_message(f"exported {result.path}" + (f" (measured max |difference|: {parity})" if parity else ""),
                              notify_user=True)
        if on_done is not None:
            on_done(result)

    worker.returned.connect(when_alive(returned))  # the dock may be closed before the export ends
    worker.errored.connect(when_alive(dock.show_error))
    worker.start()
    return worker


def add_export_button(dock, get_model: Callable[[], object], text: str = "Export model…") -> PushButton:
    """Append an export button to ``dock`` (a DockWidget). ``get_model()``: a model file path or a
    loaded model, or None (then the dock says to choose one)."""
    button = PushButton(text=text, tooltip="write the model as ONNX (.onnx) or a bioimage.io package (.zip)")

    def clicked(*_):
        model = get_model()
        if model is None or model == "":
            dock.show_error(InputError("there is no model to export.",
                                       "choose a model file (or train one) first."))
            return
        start = str(Path(model).with_suffix(".onnx")) if isinstance(model, (str, Path)) else ""
        chosen = ask_export_path(getattr(dock, "native", dock), start)
        if chosen is not None:
            dock.export_worker = start_export(dock, model, *chosen)

    button.changed.connect(clicked)
    dock.add(button)
    return button
