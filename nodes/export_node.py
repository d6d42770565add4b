"""The Export node: write a Pix2Pix model as ONNX or as a bioimage.io package into ComfyUI's
output folder (``output/pix2pix/``), under a safe name (never outside that folder, never
over an existing file). The format list and its default come from the schema
(:class:`napari_pix2pix.config.ExportConfig`); the work is the engine's
:func:`napari_pix2pix.export.export_model`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from napari_pix2pix.config import ExportConfig
from napari_pix2pix.errors import ConfigError
from napari_pix2pix.schema import get_option

from . import _runtime as rt

log = logging.getLogger("napari_pix2pix.nodes")

OUTPUT_DIR_ENV = "NAPARI_PIX2PIX_OUTPUT_DIR"
SUFFIXES = {"onnx": ".onnx", "bioimageio": ".zip"}


def output_root() -> Path:
    """``<ComfyUI output>/pix2pix``; outside ComfyUI ``$NAPARI_PIX2PIX_OUTPUT_DIR`` or
    ``~/.napari-pix2pix/output``."""
    fp = rt.folder_paths()
    if fp is not None and hasattr(fp, "get_output_directory"):
        base = Path(fp.get_output_directory())
    else:
        base = Path(os.environ.get(OUTPUT_DIR_ENV) or Path.home() / ".napari-pix2pix" / "output")
    return base / "pix2pix"


def export_path(name: str, format: str) -> Path:
    """A new file for ``name`` (relative, sub-folders allowed) inside :func:`output_root`, with
    the format's suffix; ``_00001``, ``_00002`` ... are added rather than overwrite."""
    from napari_pix2pix.paths import safe_join

    suffix = SUFFIXES[format]
    rel = rt.check_relative_name(name, "export name")
    stem = rel.name[: -len(suffix)] if rel.name.lower().endswith(suffix) else rel.name
    root = output_root()
    root.mkdir(parents=True, exist_ok=True)
    target = safe_join(root, (rel.parent / (stem + suffix)).as_posix())
    i = 0
    while target.exists():
        i += 1
        target = safe_join(root, (rel.parent / f"{stem}_{i:05d}{suffix}").as_posix())
    return target


class Pix2PixExportModel:
    DESCRIPTION = ("Export a Pix2Pix model for use elsewhere: ONNX (.onnx, for onnxruntime and other runtimes, "
                   "no torch needed) or a bioimage.io package (.zip, for Fiji/deepImageJ, ilastik, QuPath). "
                   "Written into ComfyUI's output folder under pix2pix/; existing files are never replaced.")
    CATEGORY = "Pix2Pix"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    FUNCTION = "export"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        fmt = get_option(ExportConfig, "format")
        return {"required": {
            "model": ("PIX2PIX_MODEL",),
            "name": ("STRING", {"default": "pix2pix_model",
                                "tooltip": "Relative name inside output/pix2pix; the format's extension is added."}),
            "format": (list(fmt.choices), {"default": fmt.default, "tooltip": fmt.help}),
        }}

    def export(self, model, name="pix2pix_model", format=None):
        from napari_pix2pix.export import export_model

        config = ExportConfig(format=format or ExportConfig().format)  # checks the choice
        if not hasattr(model, "generator"):
            raise ConfigError("the model input is not a Pix2Pix model.", "connect a Load/Train Pix2Pix Model output.")
        path = export_path(name, config.format)
        result = export_model(model, path, config=config)
        log.info("pix2pix: exported %s", result.path)
        return {"ui": {"text": [str(result.path)]}, "result": (str(result.path),)}


NODE_CLASS_MAPPINGS = {"Pix2PixExportModel": Pix2PixExportModel}
NODE_DISPLAY_NAME_MAPPINGS = {"Pix2PixExportModel": "Export Pix2Pix Model (ONNX / bioimage.io)"}
