"""napari side of issue 18: colorize samples and pairing, colour output, uncertainty and realism layers.

Small self-contained functions; the widgets call them (see the call sites in ``_pair_widget.py``
and ``_translate_widget.py``). The engine work is in :mod:`napari_pix2pix.tasks` and
:mod:`napari_pix2pix.uncertainty`; nothing here imports torch at module level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from ..config import TileConfig
from ..errors import DatasetError
from ..schema import get_option

UNCERTAINTY_COLORMAP = "magma"  # dark = the passes agree, bright = they disagree
REALISM_COLORMAP = "viridis"  # 0 = judged fake, 1 = judged real (fixed contrast 0..1)


# ---------------------------------------------------------------------------------- samples
def _photos(names) -> list:
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - scikit-image is in the napari extra
        raise DatasetError("the colorize samples need scikit-image.", "pip install scikit-image") from exc
    return [getattr(data, n)() for n in names]


def colorize_sample() -> list:
    """File > Open Sample > Pix2Pix > Colorize (photos): two colour photos to pair from
    (task colorize: no target needed) and a grayscale photo to colour. All bundled with
    scikit-image (``skimage.data``); nothing is downloaded."""
    from ..tasks import from_unit_rgb, lightness, unit_rgb

    coffee, rocket, chelsea = _photos(("coffee", "rocket", "chelsea"))
    gray = from_unit_rgb(lightness(unit_rgb(chelsea)) / 100.0, np.uint8)  # the cat's L as an 8-bit image
    return [(coffee, {"name": "coffee (colour, train)", "rgb": True}, "image"),
            (rocket, {"name": "rocket (colour, train)", "rgb": True}, "image"),
            (gray, {"name": "chelsea (gray, to colorize)", "colormap": "gray"}, "image")]


def colorize_ihc_sample() -> list:
    """File > Open Sample > Pix2Pix > Colorize (IHC): the left part of ``skimage.data``'s
    immunohistochemistry image in colour (train) and the right part in gray (to colour), placed
    where they were in the slide."""
    from ..tasks import from_unit_rgb, lightness, unit_rgb

    (ihc,) = _photos(("immunohistochemistry",))
    gray = from_unit_rgb(lightness(unit_rgb(ihc[:, 384:])) / 100.0, np.uint8)
    return [(ihc[:, :384], {"name": "IHC (colour, train)", "rgb": True}, "image"),
            (gray, {"name": "IHC (gray, to colorize)", "colormap": "gray", "translate": (0, 384)}, "image")]


# ---------------------------------------------------------------------------------- pairing
def task_combo():
    """The task chooser of the Pair widget, from the schema (``DataConfig.task``)."""
    from magicgui.widgets import ComboBox

    from ..config import DataConfig

    opt = get_option(DataConfig, "task")
    return ComboBox(label="task", choices=opt.choices, value=opt.default, tooltip=opt.help)


def colorize_from_layers(layers, config=None):
    """Colorize pairs from RGB image layers (each ``[..., Y, X, 3|4]``); gray layers are refused."""
    from ..tasks import colorize_dataset
    from ._layers import is_rgb, layer_array

    layers = [ly for ly in layers if ly is not None]
    if not layers:
        raise DatasetError("choose an RGB layer to learn colours from.",
                           "open colour images (File > Open Sample > Pix2Pix > Colorize) and choose one as A.")
    gray = [ly.name for ly in layers if not is_rgb(ly)]
    if gray:
        raise DatasetError(f"colorize pairs need RGB layers; {', '.join(map(repr, gray))} is not RGB.",
                           "choose a colour (RGB) layer as A; B is not used by the colorize task.")
    return colorize_dataset([layer_array(ly) for ly in layers], config, names=[ly.name for ly in layers])


# ------------------------------------------------------------------------------- translate
def maps_controls():
    """(samples SpinBox, realism CheckBox) for the Translate widget, from the schema
    (``TileConfig.samples`` / ``TileConfig.realism``)."""
    from magicgui.widgets import CheckBox, SpinBox

    samples, realism = get_option(TileConfig, "samples"), get_option(TileConfig, "realism")
    low, high = samples.range
    return (SpinBox(label="samples", value=samples.default, min=int(low), max=int(high), tooltip=samples.help),
            CheckBox(label="realism map", value=realism.default, tooltip=realism.help))


def _spatial_meta(layer, extras: dict) -> dict:
    return {"scale": tuple(layer.scale), "translate": tuple(layer.translate), **extras}


def _contrast(values: np.ndarray) -> tuple[float, float]:
    hi = float(np.percentile(values, 99.5)) if values.size else 1.0
    return 0.0, hi if hi > 0 else 1.0


def translate_maps_data(layer, model, *, model_path=None, tile: int = TileConfig.tile, overlap: int = TileConfig.overlap,
                        mode: str = TileConfig.mode, device: str = TileConfig.device,
                        batch_size: int = TileConfig.batch_size, samples: int = 1, realism: bool = False,
                        seed: int | None = None, progress=None, cancel=None) -> list:
    """Translate ``layer`` (or a snapshot with ``name``, ``data``, ``scale``, ``translate``,
    ``rgb``) and return LayerDataTuples: the output (RGB for colorize models), then
    ``'<output> [uncertainty]'`` when ``samples > 1`` and ``'<output> [realism]'`` when asked.
    All keep the input's scale and translate. ``samples == 1`` without realism is exactly the
    widget's ordinary translation (:func:`functions.translate_layer_data`)."""
    from .functions import _layer_extras, translate_layer_data
    from ._layers import channel_axis, layer_array

    if int(samples) == 1 and not realism:
        out, meta, kind = translate_layer_data(layer, model, model_path=model_path, tile=tile, overlap=overlap,
                                               mode=mode, device=device, batch_size=batch_size, progress=progress,
                                               cancel=cancel)
        return [colour_output((out, meta, kind), model)]
    from ..predict import Predictor

    config = TileConfig(tile=int(tile), overlap=int(overlap), mode=mode, device=device, batch_size=int(batch_size),
                        samples=int(samples), seed=seed, realism=bool(realism))
    image = layer_array(layer)
    result = Predictor.from_model(model, config).sample(image, channel_axis=channel_axis(layer), output_dtype="target",
                                                        progress=progress, cancel=cancel)
    path = model_path or getattr(model, "path", None)
    stem = Path(path).stem if path else f"model-step{model.step}"
    name = f"{layer.name} -> {stem}"
    extras = _layer_extras(layer)
    info = {"model_file": str(path) if path else None, "model_sha256": model.sha256, "model_step": int(model.step),
            "generator": model.config.generator, "task": model.task, "source_layer": layer.name,
            "tile": config.tile, "overlap": config.overlap, "mode": config.mode, "device": config.device,
            "batch_size": config.batch_size, "samples": config.samples, "seed": seed,
            "napari_pix2pix_version": __version__}
    out = result.output
    labels = bool(model.is_labels("b")) and model.task == "translate" and out.dtype.kind in "biu"
    meta = {"name": name, **_spatial_meta(layer, extras), "metadata": {"pix2pix": info}}
    layers = [colour_output((out, meta, "labels" if labels else "image"), model)]
    if result.uncertainty is not None:
        std = result.uncertainty
        rgb_out = layers[0][1].get("rgb", False)
        if rgb_out:  # one map per pixel: the root mean square of the channels' std
            std = np.sqrt(np.mean(np.square(std, dtype=np.float64), axis=-1)).astype(np.float32)
        layers.append((std, {"name": f"{name} [uncertainty]", **_spatial_meta(layer, extras),
                             "colormap": UNCERTAINTY_COLORMAP, "contrast_limits": _contrast(std),
                             "blending": "additive",
                             "metadata": {"pix2pix": dict(info, map="uncertainty", units="output units (std over "
                                                          "samples" + (", RMS over colour channels)" if rgb_out
                                                                       else ")"))}}, "image"))
    if result.realism is not None:
        layers.append((result.realism, {"name": f"{name} [realism]", **_spatial_meta(layer, extras),
                                        "colormap": REALISM_COLORMAP, "contrast_limits": (0.0, 1.0),
                                        "opacity": 0.6,
                                        "metadata": {"pix2pix": dict(info, map="realism",
                                                                     units="probability real (0..1)")}}, "image"))
    return layers


def colour_output(result: tuple, model) -> tuple:
    """Mark a colorize model's output as an RGB image layer (the input may have been gray, so the
    output has one more axis than the input)."""
    data, meta, kind = result
    if getattr(model, "task", "translate") == "colorize":
        meta = dict(meta, rgb=True)
        meta.setdefault("metadata", {}).setdefault("pix2pix", {})["task"] = "colorize"
        kind = "image"
    return data, meta, kind


def add_result_layers(viewer, results) -> list:
    """Add (or replace, by name) the layers of :func:`translate_maps_data`; returns them in order."""
    from napari.layers import Layer

    if isinstance(results, tuple):
        results = [results]
    added = []
    for data, meta, kind in results:
        name = meta.get("name")
        if name in viewer.layers:
            viewer.layers.remove(name)
        added.append(viewer.add_layer(Layer.create(data, meta, kind)))
    return added


def preview_rgb(l_chw: np.ndarray, ab_chw: np.ndarray) -> np.ndarray:
    """A colorize training preview (model units: L ``[1, H, W]``, ab ``[2, H, W]``) as RGB
    ``[H, W, 3]`` in 0..1, for the Train widget's preview layers."""
    import torch

    from ..layout import model_to_napari
    from ..tasks import model_to_rgb

    with torch.no_grad():
        rgb = model_to_rgb(torch.as_tensor(np.asarray(l_chw, np.float32))[None],
                           torch.as_tensor(np.asarray(ab_chw, np.float32))[None])  # [1, 3, H, W]
    return model_to_napari(rgb.numpy())
