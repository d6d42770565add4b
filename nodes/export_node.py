"""The Export node: write a Pix2Pix model as ONNX or as a bioimage.io package into ComfyUI's
output folder (``output/pix2pix/``), under a safe name (never outside that folder, never
over an existing file). The inputs behind settings come from the schema
(:class:`napari_pix2pix.config.ExportConfig`, through ``_schema``); names are joined through
``paths.safe_join`` (``_runtime._join``); the work is the engine's
:func:`napari_pix2pix.export.export_model`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from napari_pix2pix.config import ExportConfig
from napari_pix2pix.errors import ConfigError

from . import _runtime as rt
from . import _schema as sc

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
    suffix = SUFFIXES[format]
    root = output_root()
    root.mkdir(parents=True, exist_ok=True)
    target = rt._join(root, str(name or ""), "export name")
    stem = target.name[: -len(suffix)] if target.name.lower().endswith(suffix) else target.name
    folder = target.parent
    target = rt._join(root, (folder / (stem + suffix)).relative_to(root.resolve()).as_posix(), "export name")
    i = 0
    while target.exists():
        i += 1
        target = folder / f"{stem}_{i:05d}{suffix}"
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

    #: the engine settings behind the inputs: (config class, schema name -> input name)
    SCHEMA = ((ExportConfig, {}),)

    @classmethod
    def INPUT_TYPES(cls):
        return sc.merge({"required": {
            "model": ("PIX2PIX_MODEL",),
            "name": ("STRING", {"default": "pix2pix_model",
                                "tooltip": "Relative name inside output/pix2pix; the format's extension is added."}),
        }}, sc.inputs(ExportConfig))

    def export(self, model, name="pix2pix_model", **settings):
        from napari_pix2pix.export import export_model

        config = ExportConfig(**sc.values(ExportConfig, settings))  # checks the choice
        if not hasattr(model, "generator"):
            raise ConfigError("the model input is not a Pix2Pix model.", "connect a Load/Train Pix2Pix Model output.")
        path = export_path(name, config.format)
        result = export_model(model, path, config=config)
        log.info("pix2pix: exported %s", result.path)
        return {"ui": {"text": [str(result.path)]}, "result": (str(result.path),)}


NODE_CLASS_MAPPINGS = {"Pix2PixExportModel": Pix2PixExportModel}
NODE_DISPLAY_NAME_MAPPINGS = {"Pix2PixExportModel": "Export Pix2Pix Model (ONNX / bioimage.io)"}
