"""Take a trained model elsewhere: ONNX (any runtime, torch-free inference) and bioimage.io
packages (Fiji/deepImageJ, ilastik, QuPath, bioimageio.core).

:func:`export_model` is what every face calls (CLI ``export``, the napari Export button, the
Export node). Writes are atomic: a failed export leaves nothing behind. Importing this package
does not import torch.
"""

from __future__ import annotations

import os

from ..config import EXPORT_FORMATS, ExportConfig  # noqa: F401 - the schema holds the formats
from ..errors import Pix2PixError


class ExportError(Pix2PixError, RuntimeError):
    """A model that could not be exported (untraceable generator, unwritable path, parity failure)."""


def load_model(model, device: str = "cpu"):
    """A :class:`~napari_pix2pix.model.Pix2PixModel` from a model or a ``.safetensors`` path."""
    if isinstance(model, (str, os.PathLike)):
        from ..model import Pix2PixModel

        return Pix2PixModel.load(model, device=device)
    return model


def export_model(model, out: str | os.PathLike, format: str | None = None, *, config: ExportConfig | None = None,
                 **options):
    """Export ``model`` (a :class:`~napari_pix2pix.model.Pix2PixModel` or a model file) to ``out``
    in ``format`` (``onnx`` or ``bioimageio``; default ``config.format``). Returns the exporter's
    result (``.path``, ``.parity`` with the measured maximum absolute errors)."""
    config = config or ExportConfig()
    format = format or config.format
    options.setdefault("opset", config.opset)
    if format not in EXPORT_FORMATS:
        raise ExportError(f"export format {format!r} is not one of {', '.join(EXPORT_FORMATS)}.",
                          f"choose the format from: {', '.join(EXPORT_FORMATS)}.")
    if format == "onnx":
        from .onnx import export_onnx

        return export_onnx(model, out, **options)
    from .bioimageio import export_bioimageio

    return export_bioimageio(model, out, **options)


def check_writable(out: str | os.PathLike, kind: str = "file") -> None:
    """Refuse, before any work, an output that can't be written: an existing folder where a
    file is wanted, or a place whose nearest existing parent is not a folder we may write to."""
    from pathlib import Path

    out = Path(out)
    if kind == "file" and out.is_dir():
        raise ExportError(f"{str(out)!r} is a folder, not a file name.", "pass a file name such as model.onnx.")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"can't write {str(out)!r}: {str(parent)!r} is not a folder you can write to.",
                          "choose an output path in a folder you can write to.")


def write_failed(out, exc: OSError) -> ExportError:
    """The Problem/Fix error for an OSError raised while writing ``out``."""
    return ExportError(f"could not write {str(out)!r}: {exc.strerror or exc}.",
                       "choose an output path in a folder you can write to, with free space.")
